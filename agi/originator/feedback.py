"""What answered calls became, fed to each campaign's pacing history: person or machine and
whether a person was dropped (written by the FastAGI flows, read back from the attempt rows),
and the agent queue's events (a call joined, an agent took it, an agent finished and wraps up).

Times are call time (agi.originator.clock).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from agi.originator import store
from agi.originator.calls import Call, CallTracker
from agi.originator.campaigns import CampaignRun
from agi.originator.clock import Clock
from agi.outcomes import AmdStatus, Result, Routing

VERDICTS_PER_POLL = 500  # attempt rows read per poll at most


def is_person(amd_status: str | None, result: str | None) -> bool:
    """The flows' verdict on an answered call: a person unless AMD or the result says otherwise."""
    return amd_status in (AmdStatus.HUMAN.value, AmdStatus.NOTSURE.value) and result in (None, Result.LIVE_ANSWER.value)


class Feedback:
    def __init__(self, engine: AsyncEngine, clock: Clock, tracker: CallTracker, runs: dict[int, CampaignRun]) -> None:
        self.engine = engine
        self.clock = clock
        self.tracker = tracker
        self.runs = runs

    def _of(self, uniqueid: str | None) -> tuple[Call | None, CampaignRun | None]:
        """The call of an event's channel, and its campaign."""
        call = self.tracker.get(uniqueid)
        return call, (self.runs.get(call.campaign_id) if call else None)

    async def poll_verdicts(self) -> None:
        """AMD verdicts, routing and results the FastAGI flows wrote for answered calls still to
        learn from: one read for all of them (a call whose result is read is ``reported``: the
        originator has nothing to write for it)."""
        pending = [c.attempt_id for c in self.tracker.calls.values()
                   if c.answered and (c.verdict is None or (c.verdict and not c.routed) or not c.reported.is_set())]
        if not pending:
            return
        async with self.engine.connect() as conn:
            rows = await store.verdicts(conn, pending[:VERDICTS_PER_POLL])
        now = self.clock.now()
        for r in rows:
            call = self.tracker.calls.get(r.id)
            run = self.runs.get(call.campaign_id) if call else None
            if call is not None and run is not None:
                self._learn(call, run, r, now)
            elif call is not None and r.result:
                call.reported.set()

    @staticmethod
    def _learn(call: Call, run: CampaignRun, r, now: float) -> None:
        if r.result:
            call.reported.set()
        if call.verdict is None and (r.amd_status or r.result):
            call.verdict = is_person(r.amd_status, r.result)
            run.history.answered(now, call.answered_at - call.sent_at, call.verdict)
        if call.verdict and not call.routed and r.routing:
            call.routed = True
            if r.routing == Routing.DROPPED.value:
                run.history.dropped(now)
        if call.verdict is not None and r.result:
            call.routed = True  # final: nothing more to learn from this call

    # --- AMI events ------------------------------------------------------------------------

    def on_queue_join(self, event: dict) -> None:
        """QueueCallerJoin: a person waits for an agent."""
        call, run = self._of(event.get("Uniqueid"))
        if call is None or run is None or call.queued_at is not None:
            return
        now = self.clock.now()
        call.queued_at = now
        run.history.to_agent(now, now - (call.answered_at or now))

    def on_agent_connect(self, event: dict) -> None:
        """AgentConnect: an agent took the call."""
        call, run = self._of(event.get("Uniqueid"))
        if call is None or run is None or call.routed:
            return
        call.routed = True
        run.history.connected(self.clock.now())

    def on_agent_complete(self, event: dict) -> None:
        """AgentComplete: the agent's call ended; wrap-up starts."""
        _call, run = self._of(event.get("Uniqueid"))
        if run is None:
            return
        try:
            talk = float(event.get("TalkTime", 0) or 0)
        except ValueError:
            talk = 0.0
        run.agents.completed(self.clock.now(), talk)
