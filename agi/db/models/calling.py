"""Campaigns, contacts and their membership, attempts, imports, the DNC list: what is dialed and what came of it."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from agi.outcomes import CampaignMode, CampaignState, ContactState
from agi.rules.compliance import DROP_WINDOW_US_HOURS, MAX_DROP_RATE_PCT, MAX_SECONDS_TO_DROP_MESSAGE

from agi.db.models.base import utcnow, UTCDateTime, Base, new_attempt_id


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    mode: Mapped[str] = mapped_column(String(20), default=CampaignMode.BROADCAST.value)
    state: Mapped[str] = mapped_column(String(30), default=CampaignState.UNSCHEDULED.value)

    # who is dialed
    phone_field: Mapped[str] = mapped_column(String(10), default="phone")  # home|work|cell|phone|any
    default_region: Mapped[str] = mapped_column(String(2), default="US")
    allowed_countries: Mapped[list] = mapped_column(JSON, default=list)  # ISO 3166 alpha-2; [] = any

    # when: calling window in the number's local time, intersected with the schedule
    window_start: Mapped[dt.time] = mapped_column(Time, default=dt.time(8, 0))
    window_end: Mapped[dt.time] = mapped_column(Time, default=dt.time(21, 0))
    start_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    stop_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # daily windows in the campaign's time zone: {"mon": [["09:00", "17:00"]], ...}; null = every day
    schedule: Mapped[dict | None] = mapped_column(JSON)
    schedule_tz: Mapped[str] = mapped_column(String(64), default="UTC")

    # how fast
    lines: Mapped[int] = mapped_column(Integer, default=10)
    cps: Mapped[float] = mapped_column(Float, default=5.0)
    pacing_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    ring_timeout: Mapped[int] = mapped_column(Integer, default=25)  # seconds; never under 15
    drop_cap_pct: Mapped[float] = mapped_column(Float, default=MAX_DROP_RATE_PCT)
    drop_window_hours: Mapped[int] = mapped_column(Integer, default=DROP_WINDOW_US_HOURS)
    # the drop rate predictive steers toward, under the cap; null = agi.rules.pacing's default share
    drop_target_pct: Mapped[float | None] = mapped_column(Float)

    # retry (call recycling): {"busy": 5, "no_answer": 60, ...} minutes; null = the defaults of agi.rules.retry
    retry_rules: Mapped[dict | None] = mapped_column(JSON)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)

    # what happens on answer
    caller_id: Mapped[str] = mapped_column(String(120), default="")
    message: Mapped[str] = mapped_column(String(200), default="dialer/message")
    voicemail_message: Mapped[str | None] = mapped_column(String(200))
    drop_message: Mapped[str] = mapped_column(String(200), default="dialer/drop")
    optout_message: Mapped[str] = mapped_column(String(200), default="dialer/optout-confirm")
    callback_message: Mapped[str] = mapped_column(String(200), default="dialer/callback-confirm")
    wait_for_beep: Mapped[bool] = mapped_column(Boolean, default=True)
    notsure_as: Mapped[str] = mapped_column(String(20), default="human")  # human|machine
    key_map: Mapped[dict | None] = mapped_column(JSON)  # {"1": "interested"}; null = default
    key_tries: Mapped[int] = mapped_column(Integer, default=3)
    key_timeout: Mapped[int] = mapped_column(Integer, default=5)  # seconds after the message
    callback_delay_minutes: Mapped[int | None] = mapped_column(Integer)  # null = next day same time
    queue_name: Mapped[str | None] = mapped_column(String(80))  # null = no agents
    # seconds a person waits in the agent queue: the drop message must follow within 2 s
    drop_timeout: Mapped[int] = mapped_column(Integer, default=MAX_SECONDS_TO_DROP_MESSAGE)

    # the agent console (seed 004): before-call-work seconds of a preview offer (0: the agent clicks
    # Call), what an agent's refusal does (next_agent | skip), the after-call-work countdown
    bcw_seconds: Mapped[int] = mapped_column(Integer, default=0)
    on_reject: Mapped[str] = mapped_column(String(20), default="next_agent")
    acw_seconds: Mapped[int] = mapped_column(Integer, default=30)

    # call log: target calls (seed 002)
    target_seconds: Mapped[int] = mapped_column(Integer, default=60)
    sales_cycle_days: Mapped[int] = mapped_column(Integer, default=1)

    source_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    # the CRM's id: lookups by it (the API's ?external_id=, the import's identity)
    __table_args__ = (Index("ix_contacts_external_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # identity for idempotent re-import (agi.importer.rows.dedupe_key): the external id when there
    # is one, else the normalised name, numbers and other fields
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(120))
    first_name: Mapped[str] = mapped_column(String(120), default="")
    last_name: Mapped[str] = mapped_column(String(120), default="")
    home: Mapped[str | None] = mapped_column(String(40))
    work: Mapped[str | None] = mapped_column(String(40))
    cell: Mapped[str | None] = mapped_column(String(40))
    phone: Mapped[str | None] = mapped_column(String(40))
    dnc: Mapped[bool] = mapped_column(Boolean, default=False)
    custom: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignContact(Base):
    """A contact's membership in one campaign: its state, attempt count and next attempt."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (
        UniqueConstraint("campaign_id", "contact_id", name="uq_campaign_contacts_campaign_contact"),
        # counts and lists of a campaign's contacts by state (and due time)
        Index("ix_campaign_contacts_claim", "campaign_id", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(20), default=ContactState.PENDING.value)
    number: Mapped[str | None] = mapped_column(String(20))  # E.164 chosen for this campaign
    timezone: Mapped[str | None] = mapped_column(String(64))  # derived from the number
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # counted against max_attempts
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_result: Mapped[str | None] = mapped_column(String(30))
    last_attempt_id: Mapped[str | None] = mapped_column(String(36))
    claimed_by: Mapped[str | None] = mapped_column(String(80))  # dialer name
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # the state the claim took it from (pending|retry_scheduled): lets the claim query return it
    # and a released claim go back where it was
    claimed_from: Mapped[str | None] = mapped_column(String(20))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # the file import that added it and the row's line (a repeated row names the first one);
    # no foreign key: SQLite would copy this table to add one
    import_run_id: Mapped[int | None] = mapped_column(Integer)
    import_line: Mapped[int | None] = mapped_column(Integer)


# The claim query's index: due contacts of a campaign in claim order. Partial, so it holds
# only what can still be claimed and a claim reads the first rows instead of sorting them all.
Index(
    "ix_campaign_contacts_due",
    CampaignContact.campaign_id,
    CampaignContact.next_attempt_at,
    CampaignContact.id,
    postgresql_where=CampaignContact.state.in_(
        [ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value]
    ),
    sqlite_where=CampaignContact.state.in_(
        [ContactState.PENDING.value, ContactState.RETRY_SCHEDULED.value]
    ),
)


class Attempt(Base):
    """One dial attempt (or one pre-dial result); its id travels with the call as ChannelId."""

    __tablename__ = "attempts"
    __table_args__ = (
        Index("ix_attempts_campaign_result", "campaign_id", "result"),
        Index("ix_attempts_campaign_queued", "campaign_id", "queued_at"),
        Index("ix_attempts_number", "number"),
        Index("ix_attempts_ended", "ended_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_attempt_id)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    membership_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_contacts.id", ondelete="CASCADE")
    )
    dialer: Mapped[str | None] = mapped_column(String(80))
    number: Mapped[str | None] = mapped_column(String(40))
    attempt_no: Mapped[int] = mapped_column(Integer, default=1)

    queued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    originated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    result: Mapped[str | None] = mapped_column(String(30))  # Result code; final once set
    routing: Mapped[str | None] = mapped_column(String(20))  # Routing code
    disposition: Mapped[str | None] = mapped_column(String(20))  # Disposition code
    caller_abandoned: Mapped[bool] = mapped_column(Boolean, default=False)
    callback_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    amd_status: Mapped[str | None] = mapped_column(String(10))
    amd_cause: Mapped[str | None] = mapped_column(String(40))
    hangup_cause: Mapped[int | None] = mapped_column(Integer)  # Q.850
    originate_reason: Mapped[int | None] = mapped_column(Integer)  # OriginateResponse Reason
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    ivr_keys: Mapped[str] = mapped_column(String(40), default="")
    agent: Mapped[str | None] = mapped_column(String(120))
    # QUEUESTATUS as the flow read it after Queue() (TIMEOUT, JOINEMPTY, UNKNOWN, ...): UNKNOWN and
    # JOINUNAVAIL say the routing itself is broken (seed 002 "call forwarding scheme did not work")
    queue_status: Mapped[str | None] = mapped_column(String(20))
    # the call-back call the person asked for (seed 002 "No answer from a customer (Callback)")
    callback: Mapped[bool] = mapped_column(Boolean, default=False)
    charged: Mapped[bool] = mapped_column(Boolean, default=False)
    detail: Mapped[str | None] = mapped_column(Text)  # why, when the code alone does not say


class ImportRun(Base):
    """One import of a contacts file into a campaign, committed batch by batch: an interrupted one
    (Ctrl-C, kill) is found again by the file's fingerprint and goes on after ``line_done``."""

    __tablename__ = "import_runs"
    __table_args__ = (Index("ix_import_runs_campaign_fingerprint", "campaign_id", "fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(500))  # the file as named
    fingerprint: Mapped[str] = mapped_column(String(64))  # SHA-256 of the file's size, ends and options
    line_done: Mapped[int] = mapped_column(Integer, default=0)  # rows up to this line are committed
    counts: Mapped[dict | None] = mapped_column(JSON)  # agi.importer.report.ImportReport.counts()
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ImportIssue(Base):
    """A reported row of an import run (its line, reason and detail): the report of a long or
    resumed import is read back from here, never held in memory."""

    __tablename__ = "import_issues"
    __table_args__ = (Index("ix_import_issues_run_line", "run_id", "line"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str] = mapped_column(Text)


class DncEntry(Base):
    __tablename__ = "dnc"

    number: Mapped[str] = mapped_column(String(20), primary_key=True)  # E.164
    source: Mapped[str] = mapped_column(String(40), default="manual")  # manual|import|opt_out|agent
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
