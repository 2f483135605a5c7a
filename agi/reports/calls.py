"""The call log: attempts newest first, filtered by campaign, result, time and number, each with its
class (agi.outcomes.call_class; the target/repeat length class from agi.rules.target)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.admin.campaigns import find_campaign
from agi.db.models import Attempt, Campaign
from agi.errors import AdminError
from agi.outcomes import (
    CallClass,
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
        camp = await find_campaign(conn, campaign, Campaign.id)
        q = q.where(_a.c.campaign_id == camp.id)
    if result:
        q = q.where(_result_condition(result))
    if since is not None:
        q = q.where(_a.c.queued_at >= since)
    if until is not None:
        q = q.where(_a.c.queued_at < until)
    if number:
        q = q.where(_number_condition(number, region))
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


def _result_condition(text: str):
    """The attempts carrying one of the results, routings or dispositions of ``text``."""
    results, routings, dispositions = parse_result_filter(text)
    conds = []
    if results:
        conds.append(_a.c.result.in_(results))
    if routings:
        conds.append(_a.c.routing.in_(routings))
    if dispositions:
        conds.append(_a.c.disposition.in_(dispositions))
    return or_(*conds)


def _number_condition(number: str, region: str):
    """That number (any format), or, when it is no valid number, numbers containing its digits."""
    e164 = normalize(number, region)
    if e164 is not None:
        return _a.c.number == e164
    digits = "".join(ch for ch in number if ch.isdigit())
    if not digits:
        raise AdminError(f"--number {number!r} has no digits")
    return _a.c.number.like(f"%{digits}%")


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
            await conn.execute(select(Campaign.target_seconds, Campaign.sales_cycle_days)
                               .where(Campaign.id == campaign_id))
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
