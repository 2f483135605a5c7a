"""The ASGI app of `dialer web`: the public API under /api/v1, its OpenAPI document at
/openapi.json and /docs, a health check, the agent console and supervisor board (agi.web.console);
the webhook delivery worker runs beside it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.db.engine import make_engine, make_sessionmaker
from agi.web import console, errors
from agi.web.context import Api
from agi.web.limits import DEFAULT_MAX_BODY, BodyLimit, RateLimiter
from agi.web.routes import ROUTERS
from agi.webhooks.worker import WebhookWorker

log = logging.getLogger("agi.web")

API_PREFIX = "/api/v1"
API_VERSION = "1.0"  # the API's version (the OpenAPI document's), not the package's
DESCRIPTION = """The dialer's public API: campaigns, contacts, the DNC list, reports, dispositions,
webhooks and the audit log. Every request sends an API key (`dialer keys create`) as
`Authorization: Bearer dk_...`; the key's role (admin, supervisor, agent) decides what it may do,
and a key scoped to campaigns sees only those. Errors are JSON: `{"error", "message", "errors":
[{"field", "reason"}]}`."""


@dataclass
class WebOptions:
    rate: float = 20.0  # requests per second per key (bursts of twice that)
    burst: float | None = None
    max_body: int = DEFAULT_MAX_BODY
    webhooks: bool = True  # run the delivery worker (inside the server's lifespan)
    worker: dict = field(default_factory=dict)  # WebhookWorker options
    console: bool = True  # the agent console and supervisor board (agi.web.console)
    session_secret: str | None = None  # signs the console's cookies (None: one per process)
    secure_cookies: bool = False  # the console is served over HTTPS (behind the TLS proxy)
    console_poll_s: float = 1.0  # how often the console's live pages read the database


def create_app(engine: AsyncEngine | None = None, *, db_url: str | None = None,
               options: WebOptions | None = None) -> FastAPI:
    """The app over ``engine`` (or one made from ``db_url`` and disposed of at shutdown)."""
    options = options or WebOptions()
    owned = engine is None
    if engine is None:
        if db_url is None:
            raise ValueError("create_app needs an engine or a db_url")
        engine = make_engine(db_url)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        stop = asyncio.Event()
        task = None
        if options.webhooks:
            task = asyncio.create_task(WebhookWorker(engine, **options.worker).run(stop), name="webhooks")
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            if owned:
                await engine.dispose()

    app = FastAPI(title="asterisk-dialer API", version=API_VERSION, description=DESCRIPTION, lifespan=lifespan)
    app.state.api = Api(engine, make_sessionmaker(engine), RateLimiter(options.rate, options.burst))
    errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=options.max_body)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    if options.console:
        console.install(app, engine, secret=options.session_secret, secure_cookies=options.secure_cookies,
                        poll_s=options.console_poll_s)

    @app.get("/health", tags=["health"], summary="The server is up and reaches its database (no key needed)")
    async def health() -> dict:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
