"""Contacts at scale: resumable imports, the contact's external id indexed, identity by normalised fields.

- ``import_runs``: one import of a file into a campaign, committed batch by batch; an interrupted
  one is found again by the file's fingerprint and goes on after ``line_done``.
- ``import_issues``: the reported rows of a run (line, reason, detail), read back for its report.
- ``campaign_contacts.import_run_id`` / ``import_line``: the run and line that added a membership
  (a repeated row names the first one).
- ``ix_contacts_external_id``: lookups by the CRM's id.
- ``contacts.dedupe_key`` of contacts without an external id is computed again by the new identity
  rule (the same name, numbers in E.164 and other fields; agi.importer.rows.dedupe_key), so a
  re-import after the upgrade finds them; contacts that now share a key keep their old one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: Union[str, Sequence[str], None] = "0006"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

REKEY_BATCH = 5000


def upgrade() -> None:
    op.create_table(
        "import_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("line_done", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_import_runs_campaign_id_campaigns"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    with op.batch_alter_table("import_runs") as batch:
        batch.create_index("ix_import_runs_campaign_fingerprint", ["campaign_id", "fingerprint"], unique=False)
    op.create_table(
        "import_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=30), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["import_runs.id"], name=op.f("fk_import_issues_run_id_import_runs"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_issues")),
    )
    with op.batch_alter_table("import_issues") as batch:
        batch.create_index("ix_import_issues_run_line", ["run_id", "line"], unique=False)
    with op.batch_alter_table("campaign_contacts") as batch:
        batch.add_column(sa.Column("import_run_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("import_line", sa.Integer(), nullable=True))
    with op.batch_alter_table("contacts") as batch:
        batch.create_index("ix_contacts_external_id", ["external_id"], unique=False)
    _rekey(op.get_bind())


def _rekey(bind) -> None:
    """New identity keys for contacts without an external id, batch by batch, by id."""
    from agi.importer.rows import dedupe_key

    contacts = sa.table("contacts", *(sa.column(c) for c in (
        "id", "dedupe_key", "external_id", "first_name", "last_name", "home", "work", "cell", "phone", "custom")))
    custom_type = sa.JSON()
    taken = set()
    after = 0
    while True:
        rows = bind.execute(
            sa.select(contacts.c.id, contacts.c.dedupe_key, contacts.c.first_name, contacts.c.last_name,
                      contacts.c.home, contacts.c.work, contacts.c.cell, contacts.c.phone,
                      sa.cast(contacts.c.custom, custom_type).label("custom"))
            .where(contacts.c.external_id.is_(None), contacts.c.id > after)
            .order_by(contacts.c.id).limit(REKEY_BATCH)).all()
        if not rows:
            return
        after = rows[-1].id
        changes = []
        for r in rows:
            phones = {"home": r.home, "work": r.work, "cell": r.cell, "phone": r.phone}
            custom = r.custom if isinstance(r.custom, dict) else {}
            key = dedupe_key(None, r.first_name or "", r.last_name or "", phones,
                             {str(k): str(v) for k, v in custom.items()})
            if key != r.dedupe_key and key not in taken:
                changes.append((r.id, key))
            taken.add(key)
        existing = set(bind.execute(sa.select(contacts.c.dedupe_key)
                                    .where(contacts.c.dedupe_key.in_([k for _, k in changes]))).scalars()) \
            if changes else set()
        for contact_id, key in changes:
            if key not in existing:
                bind.execute(contacts.update().where(contacts.c.id == contact_id).values(dedupe_key=key))


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_index("ix_contacts_external_id")
    with op.batch_alter_table("campaign_contacts") as batch:
        batch.drop_column("import_line")
        batch.drop_column("import_run_id")
    with op.batch_alter_table("import_issues") as batch:
        batch.drop_index("ix_import_issues_run_line")
    op.drop_table("import_issues")
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_index("ix_import_runs_campaign_fingerprint")
    op.drop_table("import_runs")
