"""Each call from its Originate to its final result, as far as the originator decides it.

``Originate`` is sent once, with ``ChannelId`` = the attempt id. Its OriginateResponse settles
the call: an answered call goes on in the dialplan (the FastAGI flows write that it was answered
and its result; we only write when the Originate went out, and a result if the flows never
report one within a grace after the hang-up: the verdict poll, agi.originator.feedback, tells
us they did); a failed one ends here, classified by Reason and the Q.850 causes of its channels,
which may come after the response (``Call.wait_for_cause``). An Originate whose response was
lost (AMI trouble) is never sent again: its fate is found from the events still to come or from
Asterisk's channels. Every write goes through the process's AttemptWriter (grouped with the
other calls' writes of the same kind, tried again while the database is unreachable).
"""

from __future__ import annotations

import asyncio
import logging

from agi import metrics
from agi.ami.client import AMIClient, OriginateResult
from agi.ami.errors import AMIActionError, AMIConnectionLost, AMIError, AMINotConnected, AMITimeout
from agi.db import attempt_writes as w
from agi.db.agi_servers import dialplan_value
from agi.db.outage import OUTAGE
from agi.db.writer import AttemptWriter
from agi.logs import attempt_extra
from agi.originator.calls import Call, CallTracker
from agi.originator.campaigns import CampaignRun
from agi.originator.clock import Clock, as_dt
from agi.originator.reconciler import live_channel_ids
from agi.outcomes import Result
from agi.rules.classify import classify_failure, first_cause
from agi.rules.compliance import MIN_RING_TIMEOUT_S

log = logging.getLogger("agi.originator.settle")

HANGUP_GRACE_S = 3.0  # wait this long (real) for a failed call's channel events and their causes
ANSWERED_GRACE_S = 10.0  # after an answered call hangs up, the FastAGI flows have this long to report
RESYNC_WAIT_S = 5.0  # after an AMI outage, wait this long (real) for the session to ask for channels


class Settler:
    def __init__(self, writer: AttemptWriter, ami: AMIClient, clock: Clock, tracker: CallTracker,
                 runs: dict[int, CampaignRun], stats: dict, *, dial_template: str, agi_address: str,
                 context: str, dialer_name: str = "") -> None:
        self.writer = writer
        self.ami = ami
        self.clock = clock
        self.tracker = tracker
        self.runs = runs
        self.stats = stats
        self.dial_template = dial_template
        self.agi_address = agi_address
        self.context = context
        self.name = dialer_name  # the metrics' dialer label
        self._tasks: set[asyncio.Task] = set()

    def _ended(self, call: Call, reason: int | str | None) -> None:
        """The metrics: how the Originate of ``call`` ended at Asterisk (once per Originate sent)."""
        run = self.runs.get(call.campaign_id)
        metrics.originate_response(self.name, run.row.name if run else f"#{call.campaign_id}", reason)

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("dialer %s: a call's task failed (%s: %s); the reconciler resolves its attempt",
                      self.name, type(exc).__name__, exc, exc_info=exc)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # --- sending -------------------------------------------------------------------------

    def launch(self, run: CampaignRun, call: Call, contact_id: int) -> None:
        """Originate ``call`` (its attempt row is committed) in the background."""
        self.spawn(self.originate(run, call, contact_id))

    async def originate(self, run: CampaignRun, call: Call, contact_id: int) -> None:
        row = run.row
        timeout = max(MIN_RING_TIMEOUT_S, row.ring_timeout)
        # __: inherited by every channel made from this one (the agent's leg of Queue included)
        variables = {"__ATTEMPT_ID": call.attempt_id, "__CAMPAIGN_ID": row.id, "CONTACT_ID": contact_id,
                     "__DIALER_AGI": dialplan_value(self.agi_address),
                     # played by the dialplan if the FastAGI server cannot be reached (dialer.conf)
                     "DIALER_DROP_MESSAGE": row.drop_message}
        channel = self.dial_template.format(number=call.number)
        self.stats["originated"] += 1
        log.info("attempt %s: originate %s (campaign %s)", call.attempt_id, channel, row.name,
                 extra=attempt_extra(call.attempt_id))
        call.originated_at = self.clock.now()
        try:
            result = await self.ami.originate(
                channel=channel, context=self.context, exten="s", priority=1, timeout_ms=timeout * 1000,
                caller_id=row.caller_id or None, channel_id=call.attempt_id, variables=variables,
                action_id=f"orig-{call.attempt_id}")
        except AMINotConnected as exc:
            # nothing was sent: not a call; the contact is due again at once, no attempt counted
            await self.finish(call, Result.SERVICE_ERROR, detail=f"AMI not connected: {exc}")
            return
        except (AMITimeout, AMIConnectionLost) as exc:
            # sent, fate unknown: never re-sent; the events or the channels will tell
            metrics.originate_sent(self.name, row.name)
            call.uncertain = True
            self.stats["uncertain"] += 1
            log.warning("attempt %s: originate outcome unknown (%s); resolving from channel state",
                        call.attempt_id, exc, extra=attempt_extra(call.attempt_id))
            self.spawn(self.resolve_uncertain(call))
            return
        except AMIActionError as exc:
            metrics.originate_sent(self.name, row.name)
            self._ended(call, metrics.REFUSED)
            await self.finish(call, Result.SERVICE_ERROR, detail=f"Originate refused: {exc}")
            return
        metrics.originate_sent(self.name, row.name)
        await self.settle(call, result)

    # --- settling ------------------------------------------------------------------------

    async def settle(self, call: Call, result: OriginateResult) -> None:
        """OriginateResponse in hand: answered calls go on in the dialplan, failures end here."""
        self._ended(call, result.reason)
        if result.success:
            self.stats["answered"] += 1
            call.answered_at = self.clock.now()  # the flows write it; pacing counts it from here
            if call.ended.is_set():  # hung up before we got here
                self.spawn(self.after_answered_hangup(call))
            if call.originated_at is not None:
                await self.writer.run(w.mark_originated, call.attempt_id, as_dt(call.originated_at))
            return
        self.stats["failed"] += 1
        failed_at = self.clock.now()  # it rang until the response, however long its cause then takes
        await call.wait_for_cause(HANGUP_GRACE_S)  # its channel events may still be on their way
        outcome = classify_failure(result.reason, call.causes, call.channel_created)
        run = self.runs.get(call.campaign_id)
        if run is not None:
            run.history.unanswered(self.clock.now(), failed_at - call.sent_at)
        await self.finish(call, outcome, originate_reason=result.reason, hangup_cause=first_cause(call.causes),
                          ended_at=failed_at)

    async def finish(self, call: Call, result: Result, *, ended_at: float | None = None, **fields) -> None:
        """The attempt's final result, written here; the call leaves the tracker."""
        if call.originated_at is not None:
            fields.setdefault("originated_at", as_dt(call.originated_at))
        await self.writer.run(w.finish_attempt, call.attempt_id, result,
                              ended_at=as_dt(self.clock.now() if ended_at is None else ended_at), **fields)
        self.tracker.remove(call.attempt_id)

    async def after_answered_hangup(self, call: Call) -> None:
        """The line is free at hang-up; the flows report the result, or we do after a grace (a
        grace that waits while the database is unreachable: the flows' writes are retried too)."""
        await self._wait_reported(call)
        if not call.reported.is_set():
            await self.writer.run(w.finish_unreported, call.attempt_id, ended_at=as_dt(self.clock.now()),
                                  hangup_cause=first_cause(call.causes),
                                  detail="answered, but the FastAGI flows never reported a result")
        self.tracker.remove(call.attempt_id)

    async def _wait_reported(self, call: Call) -> None:
        while True:
            try:
                await asyncio.wait_for(call.reported.wait(), ANSWERED_GRACE_S)
                return
            except TimeoutError:
                pass
            if not OUTAGE.down and OUTAGE.up_for() >= ANSWERED_GRACE_S:
                return

    # --- an Originate whose response was lost ----------------------------------------------

    async def resolve_uncertain(self, call: Call) -> None:
        """Wait for the events (a late OriginateResponse, the Hangup), else ask Asterisk."""
        while call.uncertain and not call.ended.is_set():
            up = await self._has_channel(call)
            if up:
                if not call.answered:
                    call.answered_at = self.clock.now()  # it is up: the dialplan has it
                call.uncertain = False
                self._ended(call, metrics.NO_RESPONSE)
                return
            if up is False and not call.ended.is_set():
                break
            await asyncio.sleep(1.0)
        if call.uncertain:
            call.uncertain = False
            self._ended(call, metrics.NO_RESPONSE)
            await self._settle_lost(call)

    async def _has_channel(self, call: Call) -> bool | None:
        """Has Asterisk a channel of the call? None: it cannot be asked now."""
        if not self.ami.connected:
            return None
        try:
            channels = await self.ami.core_show_channels()
        except AMIError:
            return None
        return any((ch.get("Uniqueid") or "").split(";")[0] == call.attempt_id for ch in channels)

    async def _settle_lost(self, call: Call) -> None:
        """No response, no channel: classified by the causes seen (answered calls: unless the flows
        reported already)."""
        if call.answered or call.ended.is_set() and call.causes:
            attempt = await self.writer.run(w.get_attempt, call.attempt_id)
            if attempt is not None and attempt.result is not None:
                self.tracker.remove(call.attempt_id)
                return
        result = classify_failure(None, call.causes, channel_created=bool(call.causes))
        await self.finish(call, result if call.causes else Result.OTHER,
                          hangup_cause=first_cause(call.causes),
                          detail="AMI lost before the OriginateResponse; resolved from channel state")

    # --- AMI events ------------------------------------------------------------------------

    def on_hangup(self, event: dict) -> None:
        call = self.tracker.on_hangup(event)
        if call is not None and call.answered:
            self.spawn(self.after_answered_hangup(call))

    def on_late_originate_response(self, event: dict) -> None:
        """An OriginateResponse whose originate() gave up (AMI trouble): resolve, never re-send."""
        call = self.tracker.get(event.get("Uniqueid") or event.get("ActionID", "").removeprefix("orig-"))
        if call is None or not call.uncertain:
            return
        result = OriginateResult.from_event(event)
        call.uncertain = False
        self.spawn(self.settle(call, result))

    def on_reconnect(self) -> None:
        if self.ami.connections > 1:
            self.spawn(self.resync())

    async def resync(self) -> None:
        """After an AMI outage: calls whose Hangup was missed are over if Asterisk has no channel."""
        alive = await live_channel_ids(self.ami, self.clock, wait=RESYNC_WAIT_S)
        if alive is None:
            return
        for call in list(self.tracker.calls.values()):
            if call.answered and not call.uncertain and not call.ended.is_set() and call.attempt_id not in alive:
                log.info("attempt %s: hung up during the AMI outage", call.attempt_id,
                         extra=attempt_extra(call.attempt_id))
                call.ended.set()
                self.spawn(self.after_answered_hangup(call))
