"""Reports: the campaign summary, the call log with the CLI's filters (JSON, or CSV streamed a
page at a time), each call with its class (target, repeat, call-back not answered, broken routing)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from agi import reports
from agi.admin.text import parse_when
from agi.errors import AdminError
from agi.auth.roles import Permission
from agi.web.context import Caller, require
from agi.web.errors import invalid

router = APIRouter(tags=["reports"])
PAGE = 1000  # call-log rows per query when streaming
CSV_COLUMNS = [*reports.CALL_LOG_COLUMNS, "result_label", "answered_at", "ended_at", "hangup_cause", "detail",
               "class_label"]


@router.get("/campaigns/{campaign}/summary", summary="The campaign summary (docs/outcomes.md's rows, drop rate, pace)")
async def summary(campaign: str, caller: Caller = require(Permission.REPORTS_READ)) -> dict:
    async with caller.read() as conn:
        row = await caller.campaign(conn, campaign)
        return (await reports.summary(conn, row.id)).as_dict()


class CallFilter:
    """The CLI's `dialer report calls` filters, as query parameters."""

    def __init__(
        self,
        campaign: str | None = Query(None, max_length=200, description="Campaign id or name."),
        result: str | None = Query(None, max_length=500,
                                   description="Results, routings or dispositions, e.g. busy,dropped."),
        since: str | None = Query(None, alias="from", max_length=40, description="From (UTC): YYYY-MM-DD or ISO time."),
        until: str | None = Query(None, alias="to", max_length=40, description="To: a day (included) or ISO time."),
        number: str | None = Query(None, max_length=40, description="A number, or digits it contains."),
        region: str = Query("US", min_length=2, max_length=2),
    ) -> None:
        self.campaign, self.result, self.number, self.region = campaign, result, number, region
        self.since = self._time("from", since)
        self.until = self._time("to", until, end=True)

    @staticmethod
    def _time(field: str, text: str | None, end: bool = False) -> dt.datetime | None:
        if not text:
            return None
        try:
            return parse_when(text, end_of_day=end)
        except AdminError as exc:
            raise invalid(field, str(exc)) from None

    async def campaign_id(self, caller: Caller, conn) -> int | None:
        """The campaign asked for; a key scoped to one campaign gets it by default."""
        if self.campaign is not None:
            return (await caller.campaign(conn, self.campaign)).id
        scope = caller.principal.campaigns
        if scope is None:
            return None
        if len(scope) == 1:
            return next(iter(scope))
        raise invalid("campaign", "this key is scoped to several campaigns: name one")

    async def page(self, caller: Caller, conn, campaign_id: int | None, limit: int | None,
                   after: tuple[dt.datetime, str] | None = None) -> list[reports.CallRow]:
        try:
            return await reports.call_log(conn, campaign=campaign_id, result=self.result, since=self.since,
                                          until=self.until, number=self.number, region=self.region, limit=limit,
                                          after=after)
        except AdminError as exc:
            raise invalid("result" if self.result else "number", str(exc)) from None


def _json_row(r: reports.CallRow) -> dict:
    labels = r.labels()
    return {**r.as_dict(), "result_label": labels["result"], "class_label": labels["class"] or None}


@router.get("/calls", summary="The call log, newest first (the CLI's filters)")
async def calls(filters: CallFilter = Depends(), limit: int = Query(100, ge=1, le=10_000),
                caller: Caller = require(Permission.REPORTS_READ)) -> list[dict]:
    async with caller.read() as conn:
        campaign_id = await filters.campaign_id(caller, conn)
        return [_json_row(r) for r in await filters.page(caller, conn, campaign_id, limit)]


def _csv_line(values: list) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(values)
    return out.getvalue()


def _csv_values(r: reports.CallRow) -> list:
    d = r.as_dict()
    labels = r.labels()
    base = [d[c].isoformat() if isinstance(d[c], dt.datetime) else ("" if d[c] is None else d[c])
            for c in reports.CALL_LOG_COLUMNS]
    return base + [labels["result"], r.answered_at.isoformat() if r.answered_at else "",
                   r.ended_at.isoformat() if r.ended_at else "", "" if r.hangup_cause is None else r.hangup_cause,
                   r.detail or "", labels["class"]]


@router.get("/calls.csv", summary="The call log as CSV, streamed (every matching call)",
            response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def calls_csv(filters: CallFilter = Depends(), caller: Caller = require(Permission.REPORTS_READ)):
    async with caller.read() as conn:
        campaign_id = await filters.campaign_id(caller, conn)
        first = await filters.page(caller, conn, campaign_id, PAGE)  # errors answer before the stream starts

    async def lines() -> AsyncIterator[str]:
        yield _csv_line(CSV_COLUMNS)
        page = first
        while page:
            yield "".join(_csv_line(_csv_values(r)) for r in page)
            if len(page) < PAGE:
                return
            async with caller.read() as conn:
                page = await filters.page(caller, conn, campaign_id, PAGE, (page[-1].time, page[-1].attempt_id))

    return StreamingResponse(lines(), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="calls.csv"'})
