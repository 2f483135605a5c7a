"""The schema: campaigns, contacts and their campaign membership, attempts, DNC list, dialers,
agents' time per campaign; users and API keys, the audit log, webhooks and their outbox; and the
figures running services publish for the live views.

Status columns hold the codes of ``agi.outcomes``. Times are stored as naive UTC
and come back as aware UTC (``UTCDateTime``), the same on PostgreSQL and SQLite.
The schema only changes through Alembic migrations (``migrations/``).
The tables live in modules by concern (base, calling, dialers, web, agents); import them from here.
"""

from __future__ import annotations

from agi.db.models.base import Base, UTCDateTime, NAMING, utcnow, new_attempt_id
from agi.db.models.calling import Campaign, Contact, CampaignContact, Attempt, ImportRun, ImportIssue, DncEntry
from agi.db.models.dialers import Dialer, AgiServer, DialerCampaign, CampaignAgentTime, DialerLive, CampaignLive
from agi.db.models.web import User, ApiKey, AuditEntry, Webhook, WebhookDelivery
from agi.db.models.agents import Agent, AgentCall

__all__ = [
    "Base",
    "UTCDateTime",
    "NAMING",
    "utcnow",
    "new_attempt_id",
    "Campaign",
    "Contact",
    "CampaignContact",
    "Attempt",
    "ImportRun",
    "ImportIssue",
    "DncEntry",
    "Dialer",
    "AgiServer",
    "DialerCampaign",
    "CampaignAgentTime",
    "DialerLive",
    "CampaignLive",
    "User",
    "ApiKey",
    "AuditEntry",
    "Webhook",
    "WebhookDelivery",
    "Agent",
    "AgentCall",
]
