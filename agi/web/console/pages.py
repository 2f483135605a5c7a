"""Log in and out of the console (the API issue's users and argon2 passwords), throttled after failures."""

from __future__ import annotations

import math
import secrets

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from agi.auth.roles import Role
from agi.auth.users import authenticate
from agi.web.console.context import back, console, form_of, page, record, source_of
from agi.web.console.session import ConsoleSession

router = APIRouter(include_in_schema=False)
HOME = {Role.AGENT.value: "/agent", Role.SUPERVISOR.value: "/board", Role.ADMIN.value: "/board"}


@router.get("/")
async def index(request: Request) -> Response:
    s = console(request).signer.read(request)
    return RedirectResponse(HOME.get(s.role or "", "/login") if s.logged_in else "/login", status_code=303)


@router.get("/login")
async def login_page(request: Request, msg: str | None = None) -> Response:
    c = console(request)
    s = c.signer.read(request)
    response = page(request, "login.html", s, message=msg)
    c.signer.write(response, s)  # the anonymous session carries the login form's CSRF token
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    c = console(request)
    s = c.signer.read(request)
    form = await form_of(request, s)
    if form is None:
        return back("/login", "The form expired: please try again.")
    name = form.get("user", "").strip()[:80]
    keys = (f"user:{name.lower()}", f"addr:{source_of(request)}")
    wait = c.throttle.wait(*keys)
    async with c.engine.begin() as conn:
        if wait > 0:
            await record(conn, request, ConsoleSession(s.csrf, name), "console.login_throttled", f"user {name}")
            return back("/login", f"Too many failed logins: try again in {math.ceil(wait)} s.")
        principal = await authenticate(conn, name, form.get("password", ""))
        if principal is None:
            c.throttle.failed(*keys)
            await record(conn, request, ConsoleSession(s.csrf, name), "console.login_failed", f"user {name}")
            return back("/login", "Wrong user name or password.")
        await record(conn, request, ConsoleSession(s.csrf, principal.user), "console.login", f"user {principal.user}")
    c.throttle.succeeded(*keys)
    fresh = ConsoleSession(csrf=secrets.token_urlsafe(24), user=principal.user, role=principal.role.value)
    response = RedirectResponse(HOME[fresh.role], status_code=303)
    c.signer.write(response, fresh)
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    c = console(request)
    s = c.signer.read(request)
    if s.logged_in and await form_of(request, s) is not None:
        async with c.engine.begin() as conn:
            await record(conn, request, s, "console.logout", f"user {s.user}")
    response = back("/login", "Logged out.")
    c.signer.clear(response)
    return response
