"""The web console of `dialer web`: agents (/agent) and supervisors (/board), server-rendered pages
(agi/web/templates), a little vendored JavaScript (agi/web/static), live by Server-Sent Events.

- session.py -- the signed session cookie, CSRF tokens, the login throttle
- context.py -- what every page works with (session, form, templates, audit)
- pages.py   -- log in, log out
- agent.py   -- the agent's console; board.py -- the supervisor board
"""

from __future__ import annotations

import logging
import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.web.console import agent, board, pages
from agi.web.console.context import STATIC, Console, make_templates
from agi.web.console.session import LoginThrottle, Signer

log = logging.getLogger("agi.web.console")


def install(app: FastAPI, engine: AsyncEngine, *, secret: str | None, secure_cookies: bool = False,
            poll_s: float = 1.0) -> None:
    """Mount the console's pages and static files on ``app``."""
    if not secret:
        secret = secrets.token_urlsafe(32)
        log.warning("console: no --session-secret (DIALER_SESSION_SECRET) given: sessions end when this "
                    "process stops, and several `dialer web` processes do not share them")
    app.state.console = Console(engine, Signer(secret, secure=secure_cookies), LoginThrottle(), make_templates(),
                                poll_s=poll_s)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    for module in (pages, agent, board):
        app.include_router(module.router)
