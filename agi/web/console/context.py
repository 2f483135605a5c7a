"""What a console page works with: the session (signed cookie), the logged-in user and role, the form
with its CSRF token checked, the templates, the audit log.

Pages redirect to /login without a session; a POST whose CSRF token does not match the session's
is refused (403) and changes nothing. An agent's page needs role agent, the board supervisor or admin.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import parse_qs, quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agi import audit
from agi.web.console.session import CSRF_FIELD, ConsoleSession, LoginThrottle, Signer, csrf_ok

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"
MAX_FORM = 16 * 1024  # a console form is small: a note, a reason, a date


@dataclass
class Console:
    """The console's shared state (``app.state.console``)."""

    engine: AsyncEngine
    signer: Signer
    throttle: LoginThrottle
    templates: Jinja2Templates
    poll_s: float = 1.0  # how often the live pages (SSE) look at the database


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["hms"] = hms
    templates.env.filters["epoch_ms"] = lambda t: int(t.timestamp() * 1000) if t else ""
    templates.env.filters["utc"] = lambda t: t.strftime("%Y-%m-%d %H:%M") if t else ""
    return templates


def hms(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def console(request: Request) -> Console:
    return request.app.state.console


def source_of(request: Request) -> str:
    return f"console {request.client.host if request.client else 'unknown'}"


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class NotAllowed(Exception):
    """No session, or the wrong role: the page redirects to the login."""


def user_of(request: Request, *roles: str) -> ConsoleSession:
    s = console(request).signer.read(request)
    if not s.logged_in or (roles and s.role not in roles):
        raise NotAllowed()
    return s


async def form_of(request: Request, s: ConsoleSession) -> dict[str, str] | None:
    """The POSTed form (urlencoded) when its CSRF token is the session's, else None."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return None
    fields = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    return fields if csrf_ok(s, fields.get(CSRF_FIELD)) else None


def page(request: Request, template: str, s: ConsoleSession, **context: Any) -> Response:
    response = console(request).templates.TemplateResponse(
        request, template, {"session": s, "csrf": s.csrf, **context})
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                                   "img-src 'self' data:; frame-ancestors 'none'")
    return response


def back(to: str, flash: str | None = None) -> RedirectResponse:
    """After a POST: see the page again (303), with a one-line message in the query."""
    return RedirectResponse(f"{to}?msg={quote(flash)}" if flash else to, status_code=303)


async def record(conn: AsyncConnection, request: Request, s: ConsoleSession, action: str, target: str,
                 details: Mapping[str, Any] | None = None) -> None:
    await audit.record(conn, s.user or "anonymous", action, target, details, source_of(request))
