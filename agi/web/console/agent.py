"""The agent's console (/agent): ready or paused (with a reason), the contact in front of them (a preview
offer with its before-call-work countdown, or the screen pop of a queue call), after-call work with
the disposition form; live by Server-Sent Events (/agent/events) polling the database.

An agent sees and acts on their own calls only: every query is by their agent id. Every action is
audited; the originator of their dialer does the AMI part (agi.originator.agents_ami, .preview).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.admin.text import parse_when
from agi.agents import desk, roster
from agi.auth.roles import Role
from agi.dispositions import parse_agent_disposition
from agi.errors import AdminError
from agi.outcomes import Disposition
from agi.web.console.context import NotAllowed, back, console, form_of, now, page, record, user_of

router = APIRouter(include_in_schema=False)
AGENT = Role.AGENT.value
CHOICES = (Disposition.INTERESTED, Disposition.NOT_INTERESTED, Disposition.CALL_BACK, Disposition.OPT_OUT)
HEARTBEAT_S = 15.0  # an SSE comment this often keeps proxies from closing an idle stream


async def agent_view(conn: AsyncConnection, user: str) -> dict:
    """What the panel shows; an offer shown for the first time starts its before call work."""
    agent = await roster.agent_of(conn, user)
    if agent is None:
        return {"agent": None, "card": None, "key": "none", "call": ""}
    card = await desk.card(conn, agent.id)
    if card is not None and card.state == desk.OFFERED and await desk.mark_seen(conn, agent.id, card.id, now()):
        card = await desk.card(conn, agent.id)
    key = f"{agent.state}:{agent.wanted_seq}:{agent.applied_seq}:{agent.last_error}:{card.key if card else ''}"
    return {"agent": agent, "card": card, "key": key, "call": f"{card.id}:{card.state}" if card else "", "now": now(), "reasons": roster.PAUSE_REASONS,
            "choices": CHOICES}


def render_panel(request: Request, view: dict, csrf: str) -> str:
    template = console(request).templates.get_template("_agent_panel.html")
    return template.render(csrf=csrf, **view)


@router.get("/agent")
async def agent_page(request: Request, msg: str | None = None) -> Response:
    try:
        s = user_of(request, AGENT)
    except NotAllowed:
        return back("/login", "Please log in as an agent.")
    async with console(request).engine.begin() as conn:
        view = await agent_view(conn, s.user)
    return page(request, "agent.html", s, message=msg, panel=render_panel(request, view, s.csrf), key=view["key"],
                call=view["call"])


@router.get("/agent/events")
async def agent_events(request: Request) -> Response:
    try:
        s = user_of(request, AGENT)
    except NotAllowed:
        return Response(status_code=401)
    return StreamingResponse(_panel_stream(request, s.user, s.csrf), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _panel_stream(request: Request, user: str, csrf: str) -> AsyncIterator[str]:
    c = console(request)
    last, quiet = None, 0.0
    while not await request.is_disconnected():
        async with c.engine.begin() as conn:
            view = await agent_view(conn, user)
        if view["key"] != last:
            last, quiet = view["key"], 0.0
            data = {"key": last, "call": view["call"], "html": render_panel(request, view, csrf)}
            yield f"event: panel\ndata: {json.dumps(data)}\n\n"
        elif quiet >= HEARTBEAT_S:
            quiet = 0.0
            yield ": still here\n\n"
        await asyncio.sleep(c.poll_s)
        quiet += c.poll_s


@router.post("/agent/state")
async def set_state(request: Request) -> Response:
    try:
        s = user_of(request, AGENT)
    except NotAllowed:
        return back("/login", "Please log in as an agent.")
    form = await form_of(request, s)
    if form is None:
        return back("/agent", "The form expired: reload the page and try again.")
    wanted, reason = form.get("state", ""), form.get("reason") or None
    async with console(request).engine.begin() as conn:
        agent = await roster.agent_of(conn, s.user)
        if agent is None:
            return back("/agent", "You are not set up as an agent yet.")
        try:
            await roster.request(conn, agent.id, wanted, reason)
        except ValueError as exc:
            return back("/agent", str(exc))
        await record(conn, request, s, f"agent.{wanted}", f"agent {s.user}", {"reason": reason})
    return back("/agent")


@router.post("/agent/calls/{call_id}/{action}")
async def call_action(request: Request, call_id: int, action: str) -> Response:
    try:
        s = user_of(request, AGENT)
    except NotAllowed:
        return back("/login", "Please log in as an agent.")
    form = await form_of(request, s)
    if form is None:
        return back("/agent", "The form expired: reload the page and try again.")
    async with console(request).engine.begin() as conn:
        agent = await roster.agent_of(conn, s.user)
        if agent is None or action not in ("call", "reject", "dispose"):
            return back("/agent", "No such action.")
        if action == "dispose":
            outcome = await _dispose(conn, agent.id, call_id, form)
        elif action == "call":
            outcome = None if await desk.ask_call(conn, agent.id, call_id, now()) else "That offer is gone."
        else:
            outcome = None if await desk.reject(conn, agent.id, call_id, now()) else "That offer is gone."
        if outcome is None:
            await record(conn, request, s, f"agent.{action}", f"agent call {call_id}",
                         {k: v for k, v in form.items() if k != "csrf"})
    return back("/agent", outcome)


async def _dispose(conn: AsyncConnection, agent_id: int, call_id: int, form: dict) -> str | None:
    """None when the disposition was stored, else what to tell the agent."""
    attempt_id = await desk.attempt_of_call(conn, agent_id, call_id)
    if attempt_id is None:
        return "That call is not yours or has no attempt."
    try:
        choice = parse_agent_disposition(form.get("disposition", ""))
        when = None
        if choice is Disposition.CALL_BACK and form.get("callback_at"):
            when = parse_when(form["callback_at"].replace("T", " "), dt.timezone.utc, now=now())
        note = form.get("note", "").strip()[:2000] or None
        stored = await desk.dispose(conn, attempt_id, choice, when, by="console", now=now(), agent_id=agent_id,
                                    note=note)
    except AdminError as exc:
        return str(exc)
    return None if stored else "A disposition was given already (the first one stands)."
