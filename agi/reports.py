"""Reports over the attempts table: the campaign summary (docs/outcomes.md's three rows), the call log,
and the contact listing used by ``contacts list/export``.

Every count is a COUNT over ``attempts``; the labels and the grouping come from
agi.outcomes (the call log's class too: agi.outcomes.call_class, with the target/repeat
length class from agi.rules.target). Agent occupancy comes from
the agent time the originators store (``campaign_agent_time``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.admin import AdminError
from agi.db import drops
from agi.db.models import Attempt, Campaign, CampaignAgentTime, CampaignContact, Contact, Dialer, utcnow
from agi.outcomes import (
    DIAL_RESULTS,
    FINISHED,
    SUMMARY_ROWS,
    CallClass,
    ContactState,
    Disposition,
    Result,
    Routing,
    call_class,
    parse_outcomes,
    routing_broken,
)
from agi.rules.predial import normalize
from agi.rules.target import classify_calls

_a = Attempt.__table__

# Results outside the three rows that the summary still shows on its own line.
EXTRA_CELLS = (Result.REJECTED, Result.INVALID_NUMBER, Result.FORBIDDEN_DESTINATION)
_RESULT_CODES = {r.value for r in Result}
_ROUTING_CODES = {r.value for r in Routing}
_DISPOSITION_CODES = {d.value for d in Disposition}


async def campaign_ref(conn: AsyncConnection, ref: str | int) -> Any:
    """A campaign row (id, name, drop settings, target settings) by name, or by id."""
    cols = (Campaign.id, Campaign.name, Campaign.drop_cap_pct, Campaign.drop_window_hours,
            Campaign.target_seconds, Campaign.sales_cycle_days, Campaign.queue_name)
    text = str(ref).strip()
    row = (await conn.execute(select(*cols).where(Campaign.name == text))).first()
    if row is None and text.isdigit():
        row = (await conn.execute(select(*cols).where(Campaign.id == int(text)))).first()
    if row is None:
        raise AdminError(f"no campaign {text!r} (by name or id); see `dialer campaign list`")
    return row


# --- the summary ----------------------------------------------------------------------------


@dataclass
class Summary:
    campaign: str
    campaign_id: int
    cells: dict[str, int]  # every SUMMARY_ROWS code, plus EXTRA_CELLS codes
    in_progress: int  # attempts without a result yet
    live_in_window: int
    dropped_in_window: int
    drop_window_hours: int
    drop_cap_pct: float
    attempts_last_hour: int
    attempts_per_hour: float | None  # dialed attempts / hours between the first and last
    agent_occupancy_pct: float | None  # whole campaign; None: no agent logged in (agent_occupancy)
    now: dt.datetime = field(default_factory=utcnow)

    @property
    def drop_rate_pct(self) -> float | None:
        if not self.live_in_window:
            return None
        return 100.0 * self.dropped_in_window / self.live_in_window

    @property
    def over_cap(self) -> bool:
        rate = self.drop_rate_pct
        return rate is not None and rate > self.drop_cap_pct

    def rows(self) -> list[list[tuple[str, str, int]]]:
        """SUMMARY_ROWS with counts: [[(code, label, count), ...], ...]."""
        return [[(code, label, self.cells[code]) for code, label in row] for row in SUMMARY_ROWS]

    def extra(self) -> list[tuple[str, str, int]]:
        return [(r.value, r.label, self.cells[r.value]) for r in EXTRA_CELLS]

    def as_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "campaign_id": self.campaign_id,
            "rows": [[{"code": c, "label": lbl, "count": n} for c, lbl, n in row] for row in self.rows()],
            "extra": [{"code": c, "label": lbl, "count": n} for c, lbl, n in self.extra()],
            "cells": dict(self.cells),
            "in_progress": self.in_progress,
            "drop_rate": {
                "pct": self.drop_rate_pct,
                "dropped": self.dropped_in_window,
                "live_answers": self.live_in_window,
                "window_hours": self.drop_window_hours,
                "cap_pct": self.drop_cap_pct,
                "over_cap": self.over_cap,
            },
            "agent_occupancy_pct": self.agent_occupancy_pct,
            "attempts_last_hour": self.attempts_last_hour,
            "attempts_per_hour": self.attempts_per_hour,
            "as_of": self.now,
        }


def tally(groups: list[tuple[str | None, str | None, str | None, int]]) -> tuple[dict[str, int], int]:
    """(result, routing, disposition, count) groups -> the summary cells, and the open attempts.

    Finished = attempts whose result is a dial result (a line was used); routing and
    disposition cells count attempts carrying them, whatever else they carry.
    """
    cells = {code: 0 for row in SUMMARY_ROWS for code, _label in row}
    cells.update({r.value: 0 for r in EXTRA_CELLS})
    open_ = 0
    dial_codes = {r.value for r in DIAL_RESULTS}
    for result, routing, disposition, n in groups:
        if result is None:
            open_ += n
        elif result in dial_codes:
            cells[FINISHED] += n
        if result in cells:
            cells[result] += n
        if routing in cells:
            cells[routing] += n
        if disposition in cells:
            cells[disposition] += n
    return cells, open_


async def summary(conn: AsyncConnection, campaign: str | int, now: dt.datetime | None = None) -> Summary:
    """The campaign summary: one grouped COUNT for the cells, one for the drop rate and pace."""
    now = now or utcnow()
    camp = await campaign_ref(conn, campaign)
    groups = (
        await conn.execute(
            select(_a.c.result, _a.c.routing, _a.c.disposition, func.count())
            .where(_a.c.campaign_id == camp.id)
            .group_by(_a.c.result, _a.c.routing, _a.c.disposition)
        )
    ).all()
    cells, open_ = tally([tuple(g) for g in groups])

    since = now - dt.timedelta(hours=camp.drop_window_hours)
    in_window = drops.ANSWERED_AT >= since
    line_used = or_(_a.c.result.is_(None), _a.c.result.in_([r.value for r in DIAL_RESULTS]))
    row = (
        await conn.execute(
            select(
                func.count().filter(drops.COUNTS_AS_LIVE, in_window),
                func.count().filter(drops.COUNTS_AS_DROPPED, in_window),
                func.count().filter(line_used, _a.c.queued_at >= now - dt.timedelta(hours=1)),
                func.count().filter(line_used),
                func.min(_a.c.queued_at).filter(line_used),
                func.max(_a.c.queued_at).filter(line_used),
            ).where(_a.c.campaign_id == camp.id)
        )
    ).one()
    live_n, dropped_n, last_hour, dialed, first, last = row
    per_hour = None
    if dialed:
        first, last = _aware(first), _aware(last)
        hours = max((last - first).total_seconds() / 3600.0, 1.0)  # under an hour: the count itself
        per_hour = dialed / hours
    return Summary(
        campaign=camp.name,
        campaign_id=camp.id,
        cells=cells,
        in_progress=open_,
        live_in_window=live_n,
        dropped_in_window=dropped_n,
        drop_window_hours=camp.drop_window_hours,
        drop_cap_pct=camp.drop_cap_pct,
        attempts_last_hour=last_hour,
        attempts_per_hour=per_hour,
        agent_occupancy_pct=await agent_occupancy(conn, camp.id),
        now=now,
    )


def _aware(value):
    """MIN/MAX bypass the column type on some backends: naive UTC -> aware UTC."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value


async def agent_occupancy(
    conn: AsyncConnection, campaign_id: int, since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> float | None:
    """Percent of the agents' logged-in time spent talking or in after-call work while the
    campaign was worked, over the hours overlapping [since, until) (default: all); None when
    no agent was logged in."""
    busy, logged = await agent_seconds(conn, campaign_id, since, until)
    if not logged:
        return None
    return 100.0 * busy / logged


async def agent_seconds(
    conn: AsyncConnection, campaign_id: int, since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[float, float]:
    """(busy, logged-in) agent-seconds of the campaign's agents, each agent counted once.

    The originators store what each one measured, per hour (store.add_agent_time). Dialers
    on one Asterisk box (same AMI host and port) poll the same queue and see the same
    agents: per hour only the larger of their figures counts (max of busy, max of logged:
    busy never exceeds logged, so neither does the ratio). Dialers on different boxes have
    different agents: their figures add up.
    """
    at, d = CampaignAgentTime.__table__, Dialer.__table__
    q = (
        select(func.max(at.c.busy_agent_seconds).label("busy"),
               func.max(at.c.logged_agent_seconds).label("logged"))
        .select_from(at.join(d, d.c.id == at.c.dialer_id))
        .where(at.c.campaign_id == campaign_id)
        .group_by(at.c.hour, d.c.ami_host, d.c.ami_port)
    )
    if since is not None:
        q = q.where(at.c.hour > since - dt.timedelta(hours=1))
    if until is not None:
        q = q.where(at.c.hour < until)
    per_box = q.subquery()
    busy, logged = (await conn.execute(select(func.sum(per_box.c.busy), func.sum(per_box.c.logged)))).one()
    return float(busy or 0.0), float(logged or 0.0)


# --- the call log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRow:
    time: dt.datetime
    campaign: str
    number: str | None
    result: str | None
    routing: str | None
    disposition: str | None
    talk_seconds: int | None
    agent: str | None
    call_class: str | None  # a CallClass code (target, repeat, routing_broken, callback_no_answer) or None
    attempt_id: str
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    hangup_cause: int | None
    detail: str | None

    def labels(self) -> dict:
        """For display: human labels instead of codes."""
        return {
            "result": Result(self.result).label if self.result else "(in progress)",
            "routing": Routing(self.routing).label if self.routing else "",
            "disposition": Disposition(self.disposition).label if self.disposition else "",
            "class": CallClass(self.call_class).label if self.call_class else "",
        }

    def as_dict(self) -> dict:
        return {
            "time": self.time, "campaign": self.campaign, "number": self.number,
            "result": self.result, "routing": self.routing, "disposition": self.disposition,
            "talk_seconds": self.talk_seconds, "agent": self.agent, "class": self.call_class,
            "attempt_id": self.attempt_id, "answered_at": self.answered_at, "ended_at": self.ended_at,
            "hangup_cause": self.hangup_cause, "detail": self.detail,
        }


CALL_LOG_COLUMNS = ("time", "campaign", "number", "result", "routing", "disposition", "talk_seconds",
                    "agent", "class", "attempt_id")


def parse_result_filter(text: str) -> tuple[list[str], list[str], list[str]]:
    """'busy,dropped,interested' -> (result codes, routing codes, disposition codes)."""
    try:
        found = parse_outcomes(text)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    return ([o.value for o in found if isinstance(o, Result)],
            [o.value for o in found if isinstance(o, Routing)],
            [o.value for o in found if isinstance(o, Disposition)])


def parse_time(text: str, end: bool = False) -> dt.datetime:
    """'2026-11-20' (UTC day; as --to the whole day is included) or an ISO time -> aware UTC."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            when = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time())
        else:
            when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise AdminError(f"bad date {text!r}: use YYYY-MM-DD or YYYY-MM-DDTHH:MM[+00:00]") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.astimezone(dt.timezone.utc)


async def call_log(
    conn: AsyncConnection,
    *,
    campaign: str | int | None = None,
    result: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    number: str | None = None,
    region: str = "US",
    limit: int | None = 1000,
    after: tuple[dt.datetime, str] | None = None,
) -> list[CallRow]:
    """Attempts, newest first, filtered; each with its class (agi.outcomes.call_class): a live
    answer's target/repeat over its number's whole history in the campaign (not only the rows
    shown), a call-back the person did not pick up, a drop whose routing is broken.
    ``after`` = (time, attempt id) of the last row of a page: the rows that follow it (paging
    through a long log without holding it whole)."""
    q = select(_a, Campaign.name.label("campaign_name")).join(Campaign, Campaign.id == _a.c.campaign_id)
    camp = None
    if campaign is not None:
        camp = await campaign_ref(conn, campaign)
        q = q.where(_a.c.campaign_id == camp.id)
    if result:
        results, routings, dispositions = parse_result_filter(result)
        conds = []
        if results:
            conds.append(_a.c.result.in_(results))
        if routings:
            conds.append(_a.c.routing.in_(routings))
        if dispositions:
            conds.append(_a.c.disposition.in_(dispositions))
        q = q.where(or_(*conds))
    if since is not None:
        q = q.where(_a.c.queued_at >= since)
    if until is not None:
        q = q.where(_a.c.queued_at < until)
    if number:
        e164 = normalize(number, region)
        if e164 is not None:
            q = q.where(_a.c.number == e164)
        else:
            digits = "".join(ch for ch in number if ch.isdigit())
            if not digits:
                raise AdminError(f"--number {number!r} has no digits")
            q = q.where(_a.c.number.like(f"%{digits}%"))
    q = q.where(_after(after)).order_by(_a.c.queued_at.desc(), _a.c.id)
    if limit:
        q = q.limit(limit)
    rows = (await conn.execute(q)).all()
    by_length = await _length_classes(conn, rows)
    return [
        CallRow(
            time=r.queued_at, campaign=r.campaign_name, number=r.number, result=r.result,
            routing=r.routing, disposition=r.disposition, talk_seconds=r.talk_seconds, agent=r.agent,
            call_class=_code(call_class(r.result, r.routing, r.queue_status, bool(r.callback), by_length.get(r.id))),
            attempt_id=r.id, answered_at=r.answered_at, ended_at=r.ended_at, hangup_cause=r.hangup_cause,
            detail=r.detail,
        )
        for r in rows
    ]


def _after(row: tuple[dt.datetime, str] | None):
    """The call log's rows after ``row`` = (time, attempt id) in its order (newest first, then id)."""
    if row is None:
        return true()
    return or_(_a.c.queued_at < row[0], and_(_a.c.queued_at == row[0], _a.c.id > row[1]))


def _code(cls: CallClass | None) -> str | None:
    return cls.value if cls is not None else None


async def _length_classes(conn: AsyncConnection, rows) -> dict[str, CallClass]:
    """attempt id -> target|repeat for the live answers among ``rows``, by talk time over their
    numbers' history (a call dropped because its routing is broken is no target: it missed its agent)."""
    wanted = {(r.campaign_id, r.number) for r in rows if r.result == Result.LIVE_ANSWER.value and r.number}
    if not wanted:
        return {}
    out: dict[str, CallClass] = {}
    for campaign_id in sorted({c for c, _n in wanted}):
        settings = (
            await conn.execute(select(Campaign.target_seconds, Campaign.sales_cycle_days).where(Campaign.id == campaign_id))
        ).one()
        numbers = sorted(n for c, n in wanted if c == campaign_id)
        history = []
        for start in range(0, len(numbers), 500):
            history += (
                await conn.execute(
                    select(_a.c.id, _a.c.number, _a.c.answered_at, _a.c.talk_seconds, _a.c.routing,
                           _a.c.queue_status).where(
                        _a.c.campaign_id == campaign_id,
                        _a.c.result == Result.LIVE_ANSWER.value,
                        _a.c.number.in_(numbers[start:start + 500]),
                    ).order_by(_a.c.answered_at, _a.c.id)
                )
            ).all()
        history = [h for h in history if not routing_broken(h.routing, h.queue_status)]
        for call, cls in zip(history, classify_calls(history, settings.target_seconds, settings.sales_cycle_days)):
            if cls is not None:
                out[call.id] = cls
    return out


# --- contacts of a campaign -----------------------------------------------------------------


async def list_contacts(
    conn: AsyncConnection, campaign: str | int, state: str | None = None, limit: int | None = None
) -> list[dict]:
    camp = await campaign_ref(conn, campaign)
    cc = CampaignContact.__table__
    ct = Contact.__table__
    q = (
        select(
            ct.c.id.label("contact_id"), ct.c.external_id, ct.c.first_name, ct.c.last_name,
            ct.c.home, ct.c.work, ct.c.cell, ct.c.phone, ct.c.dnc, ct.c.custom,
            cc.c.state, cc.c.number, cc.c.timezone, cc.c.attempts, cc.c.last_result, cc.c.next_attempt_at,
        )
        .join(cc, cc.c.contact_id == ct.c.id)
        .where(cc.c.campaign_id == camp.id)
        .order_by(cc.c.id)
    )
    if state:
        states = []
        for part in filter(None, (p.strip() for p in state.split(","))):
            try:
                states.append(ContactState.parse(part).value)
            except ValueError as exc:
                raise AdminError(str(exc)) from None
        q = q.where(cc.c.state.in_(states))
    if limit:
        q = q.limit(limit)
    return [dict(r._mapping) for r in (await conn.execute(q)).all()]
