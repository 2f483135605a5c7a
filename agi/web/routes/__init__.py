"""One module per group of endpoints; ``ROUTERS`` is what the app mounts under /api/v1."""

from __future__ import annotations

from agi.web.routes import attempts, audit, campaigns, contacts, dnc, reports, webhooks

ROUTERS = (campaigns.router, contacts.router, dnc.router, reports.router, attempts.router, webhooks.router,
           audit.router)
