"""The public HTTP API (`dialer web`): users, API keys, the audit log, webhooks and their outbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column


from agi.db.models.base import utcnow, UTCDateTime, Base


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
