"""Originates leave when the calls-per-second limits allow, evenly spaced: the CPS tokens are
taken as each Originate goes out, never earlier.

The dial loop claims, checks and commits a batch of calls, then queues them here; one task sends
them at the pace of the dialer's limit and each campaign's (agi.originator.limits), the campaign
whose next call may go soonest first. Taking the tokens at the check instead let a batch's
Originates, sent later once its transaction committed, land in the next second on top of that
second's own (118 in one second against a limit of 100, under load). The dial loop claims no more
than the limits let go within its next tick (``budget``), so a claimed call waits about a tick at
most before its Originate.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from agi.originator.calls import Call
from agi.originator.campaigns import CampaignRun
from agi.originator.clock import Clock
from agi.originator.limits import RateLimiter

Launch = Callable[[CampaignRun, Call, int], None]


class Sender:
    def __init__(self, clock: Clock, bucket: RateLimiter, launch: Launch,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep  # real seconds, as clock.elapsed() counts them (a test's clock moves with it)
        self.bucket = bucket  # the dialer's calls per second (the trunk's), real time
        self.launch = launch  # sends one Originate (agi.originator.settle.Settler.launch)
        self.queues: dict[int, deque[tuple[CampaignRun, Call, int]]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def put(self, run: CampaignRun, call: Call, contact_id: int) -> None:
        """Queue the Originate of ``call`` (its attempt row is committed)."""
        self.queues.setdefault(run.id, deque()).append((run, call, contact_id))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="originate-sender")

    def queued(self, campaign_id: int | None = None) -> int:
        if campaign_id is not None:
            return len(self.queues.get(campaign_id, ()))
        return sum(len(q) for q in self.queues.values())

    def budget(self, run: CampaignRun, horizon: float) -> int:
        """Calls of ``run`` that may start within ``horizon`` real seconds, those queued already
        deducted: what the pacing may claim now."""
        real = self.clock.elapsed()
        return max(0, min(self.bucket.room(real, horizon) - self.queued(),
                          run.bucket.room(real, horizon) - self.queued(run.id)))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            real = self.clock.elapsed()
            ready = [(max(self.bucket.next_at(real), q[0][0].bucket.next_at(real)), cid)
                     for cid, q in self.queues.items() if q]
            if not ready:
                self._wake.clear()
                await self._wake.wait()
                continue
            at, campaign_id = min(ready)
            wait = at - self.clock.elapsed()
            if wait > 0:
                await self.sleep(wait)
                continue
            real = self.clock.elapsed()
            run = self.queues[campaign_id][0][0]
            if self.bucket.available(real) < 1 or run.bucket.available(real) < 1:
                await self.sleep(0.001)  # next_at rounded a hair early
                continue
            run, call, contact_id = self.queues[campaign_id].popleft()
            self.bucket.take(real)
            run.bucket.take(real)
            self.launch(run, call, contact_id)
