"""The supervisor board (/board, role supervisor or admin): the live figures of `dialer top` (the same
query module, agi.live), agents with their state and time in it, campaigns with state, why, pacing
and drop rate (red over the cap), and start / pause / stop buttons (agi.admin.lifecycle, audited).
Live by Server-Sent Events (/board/events).

Pause is ``campaign stop`` (calls in progress finish, start resumes); stop is the admin's stop
(``stopped_by_admin``: the contacts still waiting are cancelled).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from agi import live
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


async def board_view(engine: AsyncEngine) -> dict:
    at = now()
    snap = await live.read(engine, at, all_campaigns=True, with_results=True)
    async with engine.connect() as conn:
        agents = await board.agent_lines(conn)
    figures, campaigns = board.live_figures(snap), board.campaign_lines(snap)
    key = json.dumps([figures, board.services(snap), [(a.user, a.state, a.reason, str(a.since)) for a in agents],
                      [(c.id, c.view.state.value, c.reason, c.drop_rate, c.lines_in_use, c.ringing, c.in_ivr,
                        c.waiting, c.view.occupancy_pct) for c in campaigns], snap.database.error])
    return {"figures": figures, "services": board.services(snap), "agents": agents, "campaigns": campaigns,
            "database": snap.database, "now": at, "key": key}


def render_panel(request: Request, view: dict, csrf: str) -> str:
    return console(request).templates.get_template("_board_panel.html").render(csrf=csrf, **view)


@router.get("/board")
async def board_page(request: Request, msg: str | None = None) -> Response:
    try:
        s = user_of(request, *ROLES)
    except NotAllowed:
        return back("/login", "Please log in as a supervisor.")
    view = await board_view(console(request).engine)
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
        view = await board_view(c.engine)
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
