"""FastAGI servers' heartbeats; the queue's status and the call-back flag on attempts.

- ``agi_servers``: one row per FastAGI server address, beaten by `dialer serve`; the
  originator dials only while a server its calls are sent to is alive.
- ``attempts.queue_status``: QUEUESTATUS as the flow read it after ``Queue()`` (UNKNOWN /
  JOINUNAVAIL = the routing is broken, told apart from an ordinary drop in the call log).
- ``attempts.callback``: the attempt is the call-back the person asked for.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: Union[str, Sequence[str], None] = "0002"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "agi_servers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=200), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_beat", sa.DateTime(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("live_sessions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agi_servers")),
        sa.UniqueConstraint("address", name=op.f("uq_agi_servers_address")),
    )
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("queue_status", sa.String(length=20), nullable=True))
        batch.add_column(sa.Column("callback", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("callback")
        batch.drop_column("queue_status")
    op.drop_table("agi_servers")
