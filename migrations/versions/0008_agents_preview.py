"""The agent console and preview mode (seed 004): agents, the contacts in front of them, campaign settings.

- ``agents``: a user's phone (Asterisk interface), campaigns and dialer; the console's request
  (ready, paused with a reason, logged out) and the state the originator applied over AMI.
- ``agent_calls``: one contact in front of one agent: a preview offer (operator assigned, before
  call work, rejected, calling) or a queue call the agent took, its after-call work and disposition.
- ``campaigns.bcw_seconds`` (0: wait for the agent's click), ``campaigns.on_reject`` (next_agent |
  skip), ``campaigns.acw_seconds`` (the after-call-work countdown).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("bcw_seconds", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("on_reject", sa.String(length=20), nullable=False, server_default="next_agent"))
        batch.add_column(sa.Column("acw_seconds", sa.Integer(), nullable=False, server_default="30"))

    op.create_table(
        "agents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("interface", sa.String(length=120), nullable=False),
        sa.Column("dialer_id", sa.Integer(), nullable=True),
        sa.Column("campaigns", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_since", sa.DateTime(), nullable=True),
        sa.Column("pause_reason", sa.String(length=80), nullable=True),
        sa.Column("wanted", sa.String(length=20), nullable=False),
        sa.Column("wanted_reason", sa.String(length=80), nullable=True),
        sa.Column("wanted_seq", sa.Integer(), nullable=False),
        sa.Column("applied_seq", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["dialer_id"], ["dialers.id"], name=op.f("fk_agents_dialer_id_dialers"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_agents_user_id_users"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("interface", name=op.f("uq_agents_interface")),
        sa.UniqueConstraint("user_id", name=op.f("uq_agents_user_id")),
    )
    op.create_table(
        "agent_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=True),
        sa.Column("attempt_id", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("offered_at", sa.DateTime(), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=True),
        sa.Column("bcw_until", sa.DateTime(), nullable=True),
        sa.Column("call_at", sa.DateTime(), nullable=True),
        sa.Column("connected_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("acw_until", sa.DateTime(), nullable=True),
        sa.Column("done_at", sa.DateTime(), nullable=True),
        sa.Column("contact_state_before", sa.String(length=20), nullable=True),
        sa.Column("disposition", sa.String(length=20), nullable=True),
        sa.Column("callback_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("disposed_by", sa.String(length=10), nullable=True),
        sa.Column("disposed_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_agent_calls_agent_id_agents"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["attempt_id"], ["attempts.id"], name=op.f("fk_agent_calls_attempt_id_attempts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_agent_calls_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_agent_calls_contact_id_contacts"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["membership_id"], ["campaign_contacts.id"],
                                name=op.f("fk_agent_calls_membership_id_campaign_contacts"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_calls")),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_agent_calls_attempt_id")),
    )
    with op.batch_alter_table("agent_calls") as batch:
        batch.create_index("ix_agent_calls_agent_state", ["agent_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("agent_calls") as batch:
        batch.drop_index("ix_agent_calls_agent_state")
    op.drop_table("agent_calls")
    op.drop_table("agents")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("acw_seconds")
        batch.drop_column("on_reject")
        batch.drop_column("bcw_seconds")
