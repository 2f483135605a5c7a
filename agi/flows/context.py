"""What every call flow shares: the attempt's writes, a short-lived cache of campaign settings, the clock.

Flows stay readable (``await ctx.finish(attempt.id, Result.FAX, ended_at=...)``) while every
write is one of the idempotent, attempt-id-keyed definitions of ``agi.db.attempt_writes``, run
by the AttemptWriter chosen for the database at start-up (``agi.db.writer``). A flow never
touches the engine: this is its whole database API.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.db import attempt_writes as writes
from agi.db.attempt_writes import AttemptInfo
from agi.db.models import Campaign
from agi.db.writer import AttemptWriter
from agi.fastagi import AGICall
from agi.ids import attempt_id_from_uniqueid
from agi.outcomes import Disposition, QueueStatus, Result, Routing, parse_key_map

log = logging.getLogger("agi.flows")

BROKEN_QUEUE_LOG_EVERY_S = 600  # a broken queue is logged once, then again every 10 min while it lasts


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def talk_time(answered_at: dt.datetime, ended_at: dt.datetime) -> int:
    """Talk time, our own measure: whole seconds from the answer to the hang-up. Not CDR(billsec):
    after a Queue() whose ringing nobody answered Asterisk starts the caller a new CDR, and billsec
    counts from there only."""
    return max(0, int((ended_at - answered_at).total_seconds()))


@dataclass(frozen=True)
class CampaignSettings:
    """The campaign fields a call needs, read once and kept fresh in the background (FlowContext.campaign)."""

    id: int
    name: str
    message: str
    voicemail_message: str | None
    drop_message: str
    optout_message: str
    callback_message: str
    wait_for_beep: bool
    notsure_as_machine: bool
    key_map: dict[str, Disposition]
    key_tries: int
    key_timeout: int
    callback_delay_minutes: int | None
    queue_name: str | None
    drop_timeout: int

    @classmethod
    def from_row(cls, c) -> CampaignSettings:
        return cls(
            id=c.id, name=c.name, message=c.message, voicemail_message=c.voicemail_message,
            drop_message=c.drop_message, optout_message=c.optout_message,
            callback_message=c.callback_message, wait_for_beep=bool(c.wait_for_beep),
            notsure_as_machine=(c.notsure_as or "human").lower() == "machine",
            key_map=parse_key_map(c.key_map), key_tries=c.key_tries, key_timeout=c.key_timeout,
            callback_delay_minutes=c.callback_delay_minutes, queue_name=c.queue_name or None,
            drop_timeout=c.drop_timeout,
        )

    def callback_at(self, now: dt.datetime) -> dt.datetime:
        """When to call back: the campaign's delay, or the next day at the same time."""
        if self.callback_delay_minutes:
            return now + dt.timedelta(minutes=self.callback_delay_minutes)
        return now + dt.timedelta(days=1)


class FlowContext:
    def __init__(self, engine: AsyncEngine, *, campaign_ttl: float = 5.0,
                 clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.engine = engine
        self.now = clock  # the time every flow writes (the simulator's clock under `dialer demo`)
        self.campaign_ttl = campaign_ttl
        self._campaigns: dict[int, tuple[float, CampaignSettings]] = {}
        self._refreshing: dict[int, asyncio.Task] = {}
        self.writer = AttemptWriter.for_engine(engine)  # pipelined and grouped on PostgreSQL
        self._finishing: dict[str, asyncio.Task] = {}  # attempt id -> its final write in flight
        self._broken_queues: dict[str, float] = {}  # queue -> when its broken routing was last logged

    async def aclose(self) -> None:
        """Let the writes in flight land (the engine is its owner's to dispose)."""
        await asyncio.gather(*self._finishing.values(), return_exceptions=True)
        refreshing = list(self._refreshing.values())
        for task in refreshing:
            task.cancel()
        await asyncio.gather(*refreshing, return_exceptions=True)
        await self.writer.close()

    async def campaign(self, campaign_id: int) -> CampaignSettings:
        """The campaign's settings. Read from the database the first time; after that a call
        never waits for them: once older than ``campaign_ttl`` they are read again in the
        background and the next calls get the new ones (an edit shows within a few seconds)."""
        hit = self._campaigns.get(campaign_id)
        if hit is None:  # the calls that arrive together wait for one read, not one each
            return await asyncio.shield(self._reading(campaign_id, self._read_campaign))
        read_at, settings = hit
        if time.monotonic() - read_at >= self.campaign_ttl:
            self._reading(campaign_id, self._refresh_campaign)
        return settings

    def _reading(self, campaign_id: int, read) -> asyncio.Task:
        """The read of the campaign's settings in flight, started with ``read`` if there is none."""
        task = self._refreshing.get(campaign_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(read(campaign_id))
            self._refreshing[campaign_id] = task
            task.add_done_callback(lambda _t: self._refreshing.pop(campaign_id, None))
        return task

    async def _read_campaign(self, campaign_id: int) -> CampaignSettings:
        async with self.engine.connect() as conn:
            row = (await conn.execute(
                select(Campaign.__table__).where(Campaign.__table__.c.id == campaign_id)
            )).one()
        settings = CampaignSettings.from_row(row)
        self._campaigns[campaign_id] = (time.monotonic(), settings)
        return settings

    async def _refresh_campaign(self, campaign_id: int) -> None:
        try:
            await self._read_campaign(campaign_id)
        except Exception as exc:  # the calls go on with the settings they have; tried again next call
            log.warning("campaign %s: could not re-read its settings (%s); keeping the ones read before",
                        campaign_id, exc)

    async def find_attempt(
        self, call: AGICall, *candidates: str, answered_at: dt.datetime | None = None,
        amd_status: str | None = None, amd_cause: str | None = None,
    ) -> AttemptInfo | None:
        """The attempt this call belongs to: by the given ids, the Uniqueid, then ATTEMPT_ID.

        With ``answered_at`` the attempt found is marked answered in the same write
        (``attempt_writes.mark_answered``): the hot path's first write costs no separate lookup.
        """
        ids = [attempt_id_from_uniqueid(c) for c in candidates if c] + [attempt_id_from_uniqueid(call.uniqueid)]
        for attempt_id in dict.fromkeys(i for i in ids if i):
            found = await self._lookup(attempt_id, answered_at, amd_status, amd_cause)
            if found:
                return found
        var = await call.get_variable("ATTEMPT_ID")
        if var and attempt_id_from_uniqueid(var) not in ids:
            return await self._lookup(attempt_id_from_uniqueid(var), answered_at, amd_status, amd_cause)
        return None

    async def _lookup(self, attempt_id: str, answered_at: dt.datetime | None, amd_status: str | None,
                      amd_cause: str | None) -> AttemptInfo | None:
        """Read your own writes: the lookup waits for this process's final write of the attempt
        still in flight (``finish_behind``), so the h extension's flow sees what the call wrote."""
        pending = self._finishing.get(attempt_id)
        if pending is not None:
            await asyncio.wait([pending])
        if answered_at is None:
            return await self.writer.run(writes.get_attempt, attempt_id)
        return await self.writer.run(writes.mark_answered, attempt_id, answered_at, amd_status, amd_cause)

    async def finish(
        self, attempt_id: str, result: Result, *, ended_at: dt.datetime, keys: str | None = None,
        disposition: Disposition | None = None, callback_at: dt.datetime | None = None,
        now: dt.datetime | None = None, hangup_cause: int | None = None, talk_seconds: int | None = None,
        detail: str | None = None, answered_at: dt.datetime | None = None,
    ) -> bool:
        """The call's last write, one transaction: the keys, the person's choice (first wins),
        the final result (set once) and the contact's retry rule. True if the result was set here.

        With ``answered_at`` (and no ``talk_seconds``) the talk time is the answer to ``ended_at``;
        like every bookkeeping field, the first one written stays."""
        if talk_seconds is None and answered_at is not None:
            talk_seconds = talk_time(answered_at, ended_at)
        return await self.writer.run(
            writes.finish_attempt, attempt_id, result, ended_at=ended_at, now=now or self.now(), keys=keys,
            disposition=disposition, callback_at=callback_at, hangup_cause=hangup_cause, talk_seconds=talk_seconds,
            detail=detail)

    async def choose(self, attempt_id: str, keys: str, disposition: Disposition,
                     callback_at: dt.datetime | None = None, *, now: dt.datetime | None = None,
                     waiting_agent: bool = False) -> bool:
        """The person's keys and choice (first wins; opt-out on the DNC list), and with
        ``waiting_agent`` the contact waiting for an agent: one transaction. True if chosen here."""
        return await self.writer.run(writes.set_disposition, attempt_id, disposition, callback_at,
                                     now=now or self.now(), keys=keys, waiting_agent=waiting_agent)

    async def agent_disposition(self, attempt_id: str, disposition: Disposition,
                                callback_at: dt.datetime | None = None) -> bool:
        """What the agent keyed in wrap-up: it overrides the person's key press (and moves the
        contact again if the call is over). True if written."""
        return await self.writer.run(writes.set_disposition, attempt_id, disposition, callback_at, override=True,
                                     now=self.now())

    async def set_routing(self, attempt_id: str, routing: Routing, agent: str | None = None,
                          caller_abandoned: bool = False, *, queue_status: str | None = None,
                          now: dt.datetime | None = None) -> bool:
        """What the agent queue did with the call, and QUEUESTATUS as read (the first report wins)."""
        return await self.writer.run(writes.set_routing, attempt_id, routing, agent, caller_abandoned,
                                     queue_status=queue_status, now=now or self.now())

    def log_broken_queue(self, queue: str, status: str) -> None:
        """Say once per queue (again after ``BROKEN_QUEUE_LOG_EVERY_S``), not once per call, that
        calls sent to ``queue`` cannot reach an agent because of how Asterisk is set up."""
        last = self._broken_queues.get(queue)
        at = time.monotonic()
        if last is not None and at - last < BROKEN_QUEUE_LOG_EVERY_S:
            return
        self._broken_queues[queue] = at
        why = ("Asterisk has no queue by that name" if status == QueueStatus.UNKNOWN
               else "none of its members can be reached")
        log.error("agent queue %r: %s (QUEUESTATUS=%s): the people who ask for an agent are dropped; "
                  "check queues.conf and the campaign's queue name (said again in %d min if it goes on)",
                  queue, why, status, BROKEN_QUEUE_LOG_EVERY_S // 60)

    def finish_behind(self, attempt_id: str, result: Result, **kwargs) -> asyncio.Task:
        """``finish`` started now and awaited later: the flow sends its HANGUP while the final
        write runs, so the person's call never waits on the database at the end. Await the task
        before the flow returns (nothing is lost at shutdown: the server waits for its flows)."""
        task = asyncio.get_running_loop().create_task(self.finish(attempt_id, result, **kwargs))
        self._finishing[attempt_id] = task

        def done(_task: asyncio.Task) -> None:
            if self._finishing.get(attempt_id) is task:
                del self._finishing[attempt_id]
        task.add_done_callback(done)
        return task

    async def hang_up_and_finish(self, call: AGICall, attempt_id: str, result: Result, **kwargs) -> None:
        """The call's end: the final write (``finish_behind``) runs while HANGUP goes out."""
        final = self.finish_behind(attempt_id, result, **kwargs)
        try:
            await call.hangup()
        finally:
            await final


async def unknown_call(call: AGICall) -> None:
    """A call we did not originate: say so in Asterisk's log, hang up politely, write nothing."""
    log.warning("AGI %s %s: no attempt with this id; not originated by us: hanging up",
                call.path, call.uniqueid)
    await call.verbose(f"dialer: unknown attempt {call.uniqueid}; hanging up", 1)
    await call.hangup()
