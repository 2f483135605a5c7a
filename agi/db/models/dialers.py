"""Dialers and FastAGI servers, which campaigns run where, agents' time, and the live figures the
running services publish."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from agi.outcomes import CampaignState

from agi.db.models.base import utcnow, UTCDateTime, Base


class Dialer(Base):
    """One originator (one Asterisk box)."""

    __tablename__ = "dialers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    ami_host: Mapped[str] = mapped_column(String(200), default="127.0.0.1")
    ami_port: Mapped[int] = mapped_column(Integer, default=5038)
    lines: Mapped[int] = mapped_column(Integer, default=30)
    cps: Mapped[float] = mapped_column(Float, default=10.0)
    dial_template: Mapped[str] = mapped_column(String(200), default="PJSIP/{number}@trunk")
    last_heartbeat: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgiServer(Base):
    """One FastAGI server (`dialer serve`): its heartbeat. The originator dials a campaign only
    while a server its calls are sent to (``__DIALER_AGI``) is alive."""

    __tablename__ = "agi_servers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(200), unique=True)  # host:port Asterisk reaches
    hostname: Mapped[str] = mapped_column(String(200), default="")
    pid: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_beat: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # a graceful stop says so
    live_sessions: Mapped[int] = mapped_column(Integer, default=0)


class DialerCampaign(Base):
    """A campaign assigned to a dialer: its lines there and its state on that dialer."""

    __tablename__ = "dialer_campaigns"

    dialer_id: Mapped[int] = mapped_column(
        ForeignKey("dialers.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    lines: Mapped[int | None] = mapped_column(Integer)  # null = the campaign's lines
    state: Mapped[str] = mapped_column(String(30), default=CampaignState.SCHEDULED.value)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CampaignAgentTime(Base):
    """Agent-seconds a dialer saw busy (talk + after-call work) and logged in on a campaign's
    queue, per hour: the agent occupancy of the summary report (agi.reports.agent_occupancy).

    Per dialer, because each dialer polls its own Asterisk's queue; dialers sharing one
    Asterisk see the same agents, and the report counts those once (see agent_occupancy).
    """

    __tablename__ = "campaign_agent_time"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    dialer_id: Mapped[int] = mapped_column(
        ForeignKey("dialers.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)  # start of the hour, UTC
    busy_agent_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    logged_agent_seconds: Mapped[float] = mapped_column(Float, default=0.0)



class DialerLive(Base):
    """What a running originator last published of itself, with its heartbeat
    (``dialers.last_heartbeat`` is when): its AMI session, its lines in use, and whether it
    stopped gracefully. Read by `dialer top`, `dialer status` and the metrics (agi.live)."""

    __tablename__ = "dialer_live"

    dialer_id: Mapped[int] = mapped_column(ForeignKey("dialers.id", ondelete="CASCADE"), primary_key=True)
    ami_connected: Mapped[bool] = mapped_column(Boolean, default=False)
    ami_reconnects: Mapped[int] = mapped_column(Integer, default=0)  # logins after the first one
    lines_in_use: Mapped[int] = mapped_column(Integer, default=0)
    agi_address: Mapped[str] = mapped_column(String(200), default="")  # where its answered calls go
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # a graceful stop says so


class CampaignLive(Base):
    """One campaign on one dialer as its originator last published it, with its heartbeat:
    the state and why, pacing, lines, calls by stage, agents by state."""

    __tablename__ = "campaign_live"

    dialer_id: Mapped[int] = mapped_column(ForeignKey("dialers.id", ondelete="CASCADE"), primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[str] = mapped_column(String(30))
    reason: Mapped[str] = mapped_column(String(200), default="")
    mode: Mapped[str] = mapped_column(String(20))  # the pacing mode in effect (broadcast without agents)
    dial_level: Mapped[float | None] = mapped_column(Float)  # calls in flight + to start, per ready agent
    calls_to_start: Mapped[int | None] = mapped_column(Integer)  # the pacing's last answer; null: not dialing
    lines_in_use: Mapped[int] = mapped_column(Integer, default=0)
    lines_allowed: Mapped[int] = mapped_column(Integer, default=0)
    ringing: Mapped[int] = mapped_column(Integer, default=0)
    detecting: Mapped[int] = mapped_column(Integer, default=0)  # answered, AMD still deciding
    in_ivr: Mapped[int] = mapped_column(Integer, default=0)  # a person hearing the message, keys
    waiting: Mapped[int] = mapped_column(Integer, default=0)  # in the agent queue
    agents_logged_in: Mapped[int] = mapped_column(Integer, default=0)
    agents_ready: Mapped[int] = mapped_column(Integer, default=0)
    agents_in_call: Mapped[int] = mapped_column(Integer, default=0)
    agents_acw: Mapped[int] = mapped_column(Integer, default=0)
    agents_paused: Mapped[int] = mapped_column(Integer, default=0)
