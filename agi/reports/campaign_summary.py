"""The campaign summary: docs/outcomes.md's three rows of counts, the drop rate over its rolling
window, the pace and the agents' occupancy.

Every count is a COUNT over ``attempts``; the labels and the grouping come from agi.outcomes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.admin.campaigns import find_campaign
from agi.db import drops
from agi.db.models import Attempt, Campaign, utcnow
from agi.outcomes import DIAL_RESULTS, FINISHED, SUMMARY_ROWS, Result
from agi.reports.occupancy import agent_occupancy

_a = Attempt.__table__

# Attempts that used a line: dialed (a dial result), or still in progress. The pace counts these.
LINE_USED = or_(_a.c.result.is_(None), _a.c.result.in_([r.value for r in DIAL_RESULTS]))

# Results outside the three rows that the summary still shows on its own line.
EXTRA_CELLS = (Result.REJECTED, Result.INVALID_NUMBER, Result.FORBIDDEN_DESTINATION)


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
    """The campaign summary: one grouped pass over its attempts for the cells and the drop rate,
    and the pace from the (campaign, queued_at) index."""
    now = now or utcnow()
    camp = await find_campaign(conn, campaign, Campaign.id, Campaign.name, Campaign.drop_cap_pct,
                              Campaign.drop_window_hours)
    since = now - dt.timedelta(hours=camp.drop_window_hours)
    mine = _a.c.campaign_id == camp.id
    # One pass over the campaign's attempts: counts by (result, routing, disposition), each with
    # how many fall in the drop window. Whether a group counts as a live answer, a drop or a
    # line used follows from its result and routing alone, so that is decided here per group
    # (agi.db.drops.counts_as_live ...) rather than by the database per attempt.
    groups = (
        await conn.execute(
            select(_a.c.result, _a.c.routing, _a.c.disposition, func.count(),
                   func.count().filter(drops.ANSWERED_AT >= since))
            .where(mine)
            .group_by(_a.c.result, _a.c.routing, _a.c.disposition)
        )
    ).all()
    cells, open_ = tally([tuple(g[:4]) for g in groups])
    live_n = sum(g[4] for g in groups if drops.counts_as_live(g[0], g[1]))
    dropped_n = sum(g[4] for g in groups if drops.counts_as_dropped(g[0], g[1]))
    dialed = cells[FINISHED] + open_  # LINE_USED: a dial result, or none yet
    # the pace: a range of the (campaign_id, queued_at) index, and its two ends
    line_used = select().where(mine, LINE_USED)
    last_hour, first, last = (await conn.execute(select(
        line_used.with_only_columns(func.count()).where(_a.c.queued_at >= now - dt.timedelta(hours=1))
        .scalar_subquery(),
        line_used.with_only_columns(func.min(_a.c.queued_at)).scalar_subquery(),
        line_used.with_only_columns(func.max(_a.c.queued_at)).scalar_subquery(),
    ))).one()
    first, last = _aware(first), _aware(last)
    per_hour = None
    if dialed:
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
