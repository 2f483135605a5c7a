"""Nothing left hanging: attempts whose call is gone get a final result (``other``) and a retry.

Runs at start (after a crash or SIGKILL every open attempt of this dialer is suspect) and
every 30 s. A call is gone when Asterisk has no channel for it (CoreShowChannels) or it
outlived the longest possible call. Claims that never became an attempt go back to the queue.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from agi.ami.client import AMIClient
from agi.ami.errors import AMIError
from agi.db import attempts as db
from agi.db.claim import release_claim
from agi.logs import attempt_extra
from agi.originator import store
from agi.originator.calls import Call, CallTracker
from agi.originator.clock import Clock, as_dt
from agi.outcomes import Result

log = logging.getLogger("agi.originator.reconciler")

MAX_CALL_S = 4 * 3600  # no call of ours lasts longer: an agent call included
RETRY_AFTER = dt.timedelta(minutes=5)


async def live_channel_ids(ami: AMIClient, clock: Clock, wait: float) -> set[str] | None:
    """Attempt ids Asterisk has a channel for; None if it cannot be asked now (waits up to
    ``wait`` real seconds for the AMI session)."""
    end = clock.elapsed() + wait
    while not ami.connected and clock.elapsed() < end:
        await asyncio.sleep(0.1)
    if not ami.connected:
        return None
    try:
        channels = await ami.core_show_channels()
    except AMIError as exc:
        log.warning("reconciler: CoreShowChannels failed: %s", exc)
        return None
    ids = set()
    for ch in channels:
        for key in ("Uniqueid", "Linkedid"):
            if ch.get(key):
                ids.add(ch[key].split(";", 1)[0])
    return ids


class Reconciler:
    def __init__(self, engine: AsyncEngine, ami: AMIClient, clock: Clock, tracker: CallTracker, stats: dict, *,
                 dialer_name: str) -> None:
        self.engine = engine
        self.ami = ami
        self.clock = clock
        self.tracker = tracker
        self.stats = stats
        self.name = dialer_name

    async def reconcile(self, *, startup: bool = False) -> int:
        """Resolve this dialer's dangling attempts and claims; returns how many attempts it finished."""
        now = self.clock.now()
        suspects = await self._suspects(now)
        if not suspects:
            return 0
        alive = await live_channel_ids(self.ami, self.clock, wait=10.0 if startup else 0.0)
        if alive is None:
            log.warning("reconciler: %d open attempt(s), Asterisk cannot be asked now; later", len(suspects))
            return 0
        finished = 0
        for r in suspects:
            if self._still_up(r, alive, now):
                continue
            finished += await self._end(r, alive, now)
        self.stats["reconciled"] += finished
        return finished

    async def _suspects(self, now: float) -> list:
        """Release claims that never became an attempt; the open attempts not tracked, or too old.

        A call tracked when the read starts is not a suspect even if it is gone from the tracker
        when the read returns: it was settled meanwhile (its attempt is final by now, the read
        only missed it)."""
        tracked_before = set(self.tracker.calls)
        async with self.engine.begin() as conn:
            for membership_id in await store.orphan_claims(conn, self.name):
                await release_claim(conn, membership_id, next_attempt_at=None, now=as_dt(now))
                log.info("reconciler: claim of membership %s released (no attempt was started)", membership_id)
            rows = await store.open_attempts(conn, self.name)
        calls = self.tracker.calls
        return [r for r in rows if (r.id not in calls and r.id not in tracked_before)
                or (r.id in calls and now - calls[r.id].sent_at > MAX_CALL_S)]

    def _still_up(self, r, alive: set[str], now: float) -> bool:
        """The call has a channel and is not too old: left alone (a previous run's call is followed
        to its Hangup from now on)."""
        tracked = self.tracker.calls.get(r.id)
        if r.id not in alive or (tracked is not None and now - tracked.sent_at > MAX_CALL_S):
            return False
        if tracked is None:
            self.tracker.add(Call(r.id, r.campaign_id, r.membership_id or 0, r.number or "",
                                  sent_at=now, answered_at=now))
        return True

    async def _end(self, r, alive: set[str], now: float) -> int:
        """A lost call's attempt gets its final result: 1 if this finished it."""
        why = ("its call outlived the longest possible call" if r.id in alive
               else "its call is gone (no channel in Asterisk): the dialer or the FastAGI server died")
        when = as_dt(now)
        finished = 0
        async with self.engine.begin() as conn:
            if r.answered_at is not None:  # answered and never reported: counted as a dropped person
                if await db.finish_unreported(conn, r.id, ended_at=when, detail=f"reconciler: {why}"):
                    finished = 1
            elif await db.finish_attempt(conn, r.id, Result.OTHER, ended_at=when, detail=f"reconciler: {why}"):
                await store.reschedule_after_reconcile(conn, r.id, when + RETRY_AFTER)
                finished = 1
        self.tracker.remove(r.id)
        if finished:  # else its own report landed first: nothing to say
            log.warning("reconciler: attempt %s -> other (%s)", r.id, why, extra=attempt_extra(r.id))
        return finished
