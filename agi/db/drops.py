"""The drop rate's two counts, defined once: the originator's cap, the reports and the views.

A live answer counts; so does an answered call whose FastAGI flow never reported (result
``other`` with routing ``dropped``): nobody knows whether a person answered, so it is
counted as a person who was dropped (the conservative reading of the abandonment rule).
An attempt counts in the window by when it was answered (when it was dialed, if unknown).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import Attempt
from agi.outcomes import Result, Routing

_a = Attempt.__table__

DROPPED = _a.c.routing == Routing.DROPPED.value
# persons answered: the drop rate's denominator
COUNTS_AS_LIVE = or_(_a.c.result == Result.LIVE_ANSWER.value,
                     and_(_a.c.result == Result.OTHER.value, DROPPED))
COUNTS_AS_DROPPED = and_(COUNTS_AS_LIVE, DROPPED)
ANSWERED_AT = func.coalesce(_a.c.answered_at, _a.c.queued_at)


def counts_as_live(result: str | None, routing: str | None) -> bool:
    """COUNTS_AS_LIVE of one (result, routing): for counts already grouped by them (the summary)."""
    return result == Result.LIVE_ANSWER.value or (result == Result.OTHER.value and routing == Routing.DROPPED.value)


def counts_as_dropped(result: str | None, routing: str | None) -> bool:
    """COUNTS_AS_DROPPED of one (result, routing)."""
    return counts_as_live(result, routing) and routing == Routing.DROPPED.value


async def drop_counts(conn: AsyncConnection, campaign_id: int, since: dt.datetime) -> tuple[int, int]:
    """(dropped, persons answered) of the campaign since ``since``: the abandonment rule's ratio."""
    row = (await conn.execute(
        select(func.count().filter(COUNTS_AS_DROPPED), func.count())
        .where(_a.c.campaign_id == campaign_id, COUNTS_AS_LIVE, ANSWERED_AT >= since)
    )).one()
    return int(row[0]), int(row[1])
