"""The schema: campaigns, contacts and their campaign membership, attempts, DNC list, dialers,
agents' time per campaign; users and API keys, the audit log, webhooks and their outbox; and the
figures running services publish for the live views.

Status columns hold the codes of ``agi.outcomes``. Times are stored as naive UTC
and come back as aware UTC (``UTCDateTime``), the same on PostgreSQL and SQLite.
The schema only changes through Alembic migrations (``migrations/``).
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from agi.outcomes import CampaignMode, CampaignState, ContactState
from agi.rules.compliance import DROP_WINDOW_US_HOURS, MAX_DROP_RATE_PCT, MAX_SECONDS_TO_DROP_MESSAGE


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC out; stored naive UTC on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use an aware datetime")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def new_attempt_id() -> str:
    return str(uuid.uuid4())


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


# --- the public HTTP API (`dialer web`): users, API keys, audit log, webhooks --------------------


class User(Base):
    """A person who administers or works campaigns: a role (agi.auth.roles.Role) and an optional
    password (argon2 hash) for the console's login; API keys belong to a user."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None: no password login
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """An API key: ``dk_<key_id>_<secret>``; only a hash of the secret is kept (agi.auth.keys)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(24), unique=True)  # public: shown in lists and logs
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(20))  # at most the user's role
    campaigns: Mapped[list | None] = mapped_column(JSON)  # campaign ids it may touch; None = all
    secret_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of the secret
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditEntry(Base):
    """One change made through the API or the CLI: who, what, on what, from where, when."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # "user alice, key crm (k1a2b3...)", "cli root"
    action: Mapped[str] = mapped_column(String(80))  # "campaign.start", "contacts.add", ...
    target: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict | None] = mapped_column(JSON)  # never a secret
    source: Mapped[str] = mapped_column(String(200), default="")  # "api 203.0.113.7", "cli host1"


class Webhook(Base):
    """A URL that receives each final attempt of one campaign (agi.webhooks)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(200))  # HMAC-SHA256 key of the signature header
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # the scan's cursor: ended_at of the newest attempt put in the outbox (agi.webhooks.outbox)
    cursor_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """The outbox: one message per (webhook, attempt), delivered with retries and backoff."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "attempt_id", name="uq_webhook_deliveries_webhook_attempt"),
        Index("ix_webhook_deliveries_due", "status", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id", ondelete="CASCADE"))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body, byte for byte what is signed
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|delivered|failed
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_status: Mapped[int | None] = mapped_column(Integer)  # the receiver's HTTP status
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


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


# --- the agent console (`dialer web` /agent, /board): agents, their requests and calls ------------


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
