"""Initial schema: campaigns, contacts, campaign membership, attempts, DNC list, dialers.

Written to match agi/db/models.py (``dialer db check`` compares them). Times are
naive UTC DATETIME/TIMESTAMP columns (the models" UTCDateTime).

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("phone_field", sa.String(length=10), nullable=False),
        sa.Column("default_region", sa.String(length=2), nullable=False),
        sa.Column("allowed_countries", sa.JSON(), nullable=False),
        sa.Column("window_start", sa.Time(), nullable=False),
        sa.Column("window_end", sa.Time(), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=True),
        sa.Column("stop_at", sa.DateTime(), nullable=True),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.Column("schedule_tz", sa.String(length=64), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("cps", sa.Float(), nullable=False),
        sa.Column("pacing_ratio", sa.Float(), nullable=False),
        sa.Column("ring_timeout", sa.Integer(), nullable=False),
        sa.Column("drop_cap_pct", sa.Float(), nullable=False),
        sa.Column("drop_window_hours", sa.Integer(), nullable=False),
        sa.Column("retry_rules", sa.JSON(), nullable=True),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("caller_id", sa.String(length=120), nullable=False),
        sa.Column("message", sa.String(length=200), nullable=False),
        sa.Column("voicemail_message", sa.String(length=200), nullable=True),
        sa.Column("drop_message", sa.String(length=200), nullable=False),
        sa.Column("optout_message", sa.String(length=200), nullable=False),
        sa.Column("callback_message", sa.String(length=200), nullable=False),
        sa.Column("wait_for_beep", sa.Boolean(), nullable=False),
        sa.Column("notsure_as", sa.String(length=20), nullable=False),
        sa.Column("key_map", sa.JSON(), nullable=True),
        sa.Column("key_tries", sa.Integer(), nullable=False),
        sa.Column("key_timeout", sa.Integer(), nullable=False),
        sa.Column("callback_delay_minutes", sa.Integer(), nullable=True),
        sa.Column("queue_name", sa.String(length=80), nullable=True),
        sa.Column("drop_timeout", sa.Integer(), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("sales_cycle_days", sa.Integer(), nullable=False),
        sa.Column("source_campaign_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["source_campaign_id"], ["campaigns.id"], name=op.f("fk_campaigns_source_campaign_id_campaigns")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name"))
    )
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=120), nullable=True),
        sa.Column("first_name", sa.String(length=120), nullable=False),
        sa.Column("last_name", sa.String(length=120), nullable=False),
        sa.Column("home", sa.String(length=40), nullable=True),
        sa.Column("work", sa.String(length=40), nullable=True),
        sa.Column("cell", sa.String(length=40), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("dnc", sa.Boolean(), nullable=False),
        sa.Column("custom", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_contacts_dedupe_key"))
    )
    op.create_table(
        "dialers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("ami_host", sa.String(length=200), nullable=False),
        sa.Column("ami_port", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("cps", sa.Float(), nullable=False),
        sa.Column("dial_template", sa.String(length=200), nullable=False),
        sa.Column("last_heartbeat", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dialers")),
        sa.UniqueConstraint("name", name=op.f("uq_dialers_name"))
    )
    op.create_table(
        "dnc",
        sa.Column("number", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("number", name=op.f("pk_dnc"))
    )
    op.create_table(
        "campaign_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=20), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("last_result", sa.String(length=30), nullable=True),
        sa.Column("last_attempt_id", sa.String(length=36), nullable=True),
        sa.Column("claimed_by", sa.String(length=80), nullable=True),
        sa.Column("claimed_at", sa.DateTime(), nullable=True),
        sa.Column("claimed_from", sa.String(length=20), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_contacts_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_campaign_contacts_contact_id_contacts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_contacts")),
        sa.UniqueConstraint("campaign_id", "contact_id", name="uq_campaign_contacts_campaign_contact")
    )
    op.create_index("ix_campaign_contacts_claim", "campaign_contacts", ["campaign_id", "state", "next_attempt_at"])
    # frozen here as they were at this revision (a migration never follows later code)
    claimable = sa.text("state IN ('pending', 'retry_scheduled')")
    op.create_index(
        "ix_campaign_contacts_due",
        "campaign_contacts",
        ["campaign_id", "next_attempt_at", "id"],
        postgresql_where=claimable,
        sqlite_where=claimable,
    )

    op.create_table(
        "dialer_campaigns",
        sa.Column("dialer_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=30), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_dialer_campaigns_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dialer_id"], ["dialers.id"], name=op.f("fk_dialer_campaigns_dialer_id_dialers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("dialer_id", "campaign_id", name=op.f("pk_dialer_campaigns"))
    )
    op.create_table(
        "attempts",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=True),
        sa.Column("dialer", sa.String(length=80), nullable=True),
        sa.Column("number", sa.String(length=40), nullable=True),
        sa.Column("attempt_no", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("originated_at", sa.DateTime(), nullable=True),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("result", sa.String(length=30), nullable=True),
        sa.Column("routing", sa.String(length=20), nullable=True),
        sa.Column("disposition", sa.String(length=20), nullable=True),
        sa.Column("caller_abandoned", sa.Boolean(), nullable=False),
        sa.Column("callback_at", sa.DateTime(), nullable=True),
        sa.Column("amd_status", sa.String(length=10), nullable=True),
        sa.Column("amd_cause", sa.String(length=40), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("originate_reason", sa.Integer(), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        sa.Column("ivr_keys", sa.String(length=40), nullable=False),
        sa.Column("agent", sa.String(length=120), nullable=True),
        sa.Column("charged", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_attempts_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_attempts_contact_id_contacts"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["membership_id"], ["campaign_contacts.id"], name=op.f("fk_attempts_membership_id_campaign_contacts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts"))
    )
    op.create_index("ix_attempts_campaign_queued", "attempts", ["campaign_id", "queued_at"])
    op.create_index("ix_attempts_campaign_result", "attempts", ["campaign_id", "result"])
    op.create_index("ix_attempts_ended", "attempts", ["ended_at"])
    op.create_index("ix_attempts_number", "attempts", ["number"])


def downgrade() -> None:
    op.drop_index("ix_attempts_number", table_name="attempts")
    op.drop_index("ix_attempts_ended", table_name="attempts")
    op.drop_index("ix_attempts_campaign_result", table_name="attempts")
    op.drop_index("ix_attempts_campaign_queued", table_name="attempts")
    op.drop_table("attempts")
    op.drop_table("dialer_campaigns")
    op.drop_index("ix_campaign_contacts_due", table_name="campaign_contacts")
    op.drop_index("ix_campaign_contacts_claim", table_name="campaign_contacts")
    op.drop_table("campaign_contacts")
    op.drop_table("dnc")
    op.drop_table("dialers")
    op.drop_table("contacts")
    op.drop_table("campaigns")
