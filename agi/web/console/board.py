"""The supervisor board (/board, role supervisor or admin): live figures, agents with their state and
time in it, campaigns with state and drop rate (red over the cap), and start / pause / stop buttons
(agi.admin.lifecycle, audited). Live by Server-Sent Events (/board/events).

Pause is ``campaign stop`` (calls in progress finish, start resumes); stop is the admin's stop
(``stopped_by_admin``: the contacts still waiting are cancelled).
"""

from __future__ import annotations

import asyncio
import json
from typing import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.admin.campaigns import find_campaign
from agi.admin.lifecycle import start_campaign, stop_campaign
from agi.agents import board
from agi.auth.roles import Role
from agi.db.engine import make_sessionmaker
from agi.db.models import Campaign
from agi.errors import AdminError
from agi.web.console.agent import HEARTBEAT_S
from agi.web.console.context import NotAllowed, back, console, form_of, now, page, record, user_of

router = APIRouter(include_in_schema=False)
ROLES = (Role.SUPERVISOR.value, Role.ADMIN.value)


async def board_view(conn: AsyncConnection) -> dict:
    at = now()
    figures = await board.live_figures(conn, at)
    agents = await board.agent_lines(conn)
    campaigns = await board.campaign_lines(conn, at)
    key = json.dumps([figures, [(a.user, a.state, a.reason, str(a.since)) for a in agents],
                      [(c.id, c.state, c.drop_rate) for c in campaigns]])
    return {"figures": figures, "agents": agents, "campaigns": campaigns, "now": at, "key": key}


def render_panel(request: Request, view: dict, csrf: str) -> str:
    return console(request).templates.get_template("_board_panel.html").render(csrf=csrf, **view)


@router.get("/board")
async def board_page(request: Request, msg: str | None = None) -> Response:
    try:
        s = user_of(request, *ROLES)
    except NotAllowed:
        return back("/login", "Please log in as a supervisor.")
    async with console(request).engine.connect() as conn:
        view = await board_view(conn)
    return page(request, "board.html", s, message=msg, panel=render_panel(request, view, s.csrf), key=view["key"])


@router.get("/board/events")
async def board_events(request: Request) -> Response:
    try:
        s = user_of(request, *ROLES)
    except NotAllowed:
        return Response(status_code=401)
    return StreamingResponse(_stream(request, s.csrf), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def _stream(request: Request, csrf: str) -> AsyncIterator[str]:
    c = console(request)
    last, quiet = None, 0.0
    while not await request.is_disconnected():
        async with c.engine.connect() as conn:
            view = await board_view(conn)
        if view["key"] != last or quiet >= HEARTBEAT_S:  # times in state move on: redraw now and then
            last, quiet = view["key"], 0.0
            yield f"event: panel\ndata: {json.dumps({'key': last, 'html': render_panel(request, view, csrf)})}\n\n"
        await asyncio.sleep(c.poll_s)
        quiet += c.poll_s


@router.post("/board/campaigns/{campaign_id}/{action}")
async def campaign_action(request: Request, campaign_id: int, action: str) -> Response:
    try:
        s = user_of(request, *ROLES)
    except NotAllowed:
        return back("/login", "Please log in as a supervisor.")
    if await form_of(request, s) is None:
        return back("/board", "The form expired: reload the page and try again.")
    if action not in ("start", "pause", "stop"):
        return back("/board", "No such action.")
    async with make_sessionmaker(console(request).engine)() as session:
        async with session.begin():
            try:
                name = (await find_campaign(session, campaign_id, Campaign.name)).name
                if action == "start":
                    out = await start_campaign(session, name)
                else:
                    out = await stop_campaign(session, name, admin=action == "stop")
            except AdminError as exc:
                return back("/board", str(exc))
            await record(await session.connection(), request, s, f"campaign.{action}", f"campaign {name}",
                         {"state": out["state"], "was": out["was"], "via": "board"})
    return back("/board", f"Campaign {name}: {out['state']}.")
