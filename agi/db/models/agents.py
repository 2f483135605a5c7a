"""The agent console (`dialer web` /agent, /board): agents, their requests and the calls in front of them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column


from agi.db.models.base import utcnow, UTCDateTime, Base


class Agent(Base):
    """A user with role agent as the dialer sees them: the phone (Asterisk interface) the queue and
    preview calls ring, the campaigns they work, the dialer whose originator acts for them.

    ``wanted``/``wanted_seq`` are the console's request (ready, paused, logged_out); the originator
    applies it over AMI (QueueAdd/QueuePause/QueueRemove) and writes ``state``/``applied_seq``."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    interface: Mapped[str] = mapped_column(String(120), unique=True)  # e.g. PJSIP/agent1
    dialer_id: Mapped[int | None] = mapped_column(ForeignKey("dialers.id", ondelete="SET NULL"))
    campaigns: Mapped[list] = mapped_column(JSON, default=list)  # campaign ids
    state: Mapped[str] = mapped_column(String(20), default="logged_out")  # logged_out|ready|paused
    state_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    pause_reason: Mapped[str | None] = mapped_column(String(80))
    wanted: Mapped[str] = mapped_column(String(20), default="logged_out")
    wanted_reason: Mapped[str | None] = mapped_column(String(80))
    wanted_seq: Mapped[int] = mapped_column(Integer, default=0)
    applied_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)  # why the last request could not be applied


class AgentCall(Base):
    """One contact in front of one agent: a preview offer (offered, bcw, rejected, calling) or a
    queue call the agent took (AgentConnect), then its after-call work and the agent's disposition."""

    __tablename__ = "agent_calls"
    __table_args__ = (Index("ix_agent_calls_agent_state", "agent_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    membership_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_contacts.id", ondelete="CASCADE"))
    attempt_id: Mapped[str | None] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # preview | queue
    state: Mapped[str] = mapped_column(String(20))  # offered|bcw|rejected|calling|connected|acw|done
    offered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    bcw_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # null: wait for the click
    call_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the agent asked to call
    connected_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acw_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    contact_state_before: Mapped[str | None] = mapped_column(String(20))  # settled state under acw
    disposition: Mapped[str | None] = mapped_column(String(20))
    callback_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)
    disposed_by: Mapped[str | None] = mapped_column(String(10))  # console | phone
    disposed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
