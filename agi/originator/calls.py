"""This dialer's calls in progress, kept from the AMI events: one line each until its Hangup.

An attempt's channels carry its id as Uniqueid (``<id>`` and, for Local channels,
``<id>;2``), so every Newchannel/Hangup/queue event ties back to the attempt. A failed call's
OriginateResponse may come before or after its channel events (docs/outcomes.md, AMI); ``wait_for_cause``
waits for whichever is still to come.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agi.ids import attempt_id_from_uniqueid
from agi.rules.classify import cause_known


@dataclass
class Call:
    attempt_id: str
    campaign_id: int
    membership_id: int
    number: str
    sent_at: float  # when the Originate was sent (every time here is call time, agi.originator.clock)
    answered_at: float | None = None
    channel_created: bool = False
    causes: list[int] = field(default_factory=list)  # Q.850 causes of its channels' Hangups, in order
    legs: set[str] = field(default_factory=set)  # Uniqueids of its channels seen (Newchannel or Hangup)
    legs_down: set[str] = field(default_factory=set)  # ... of those that hung up
    cause_in: asyncio.Event = field(default_factory=asyncio.Event)  # rules.classify.cause_known holds
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # the main channel hung up
    reported: asyncio.Event = field(default_factory=asyncio.Event)  # the FastAGI flows wrote its result
    verdict: bool | None = None  # True person, False machine/fax/other, None not known yet
    queued_at: float | None = None  # joined the agent queue
    routed: bool = False  # connected or dropped already fed to the pacing history
    uncertain: bool = False  # the Originate's fate is unknown (AMI lost): resolve, never re-send
    originated_at: float | None = None  # when the Originate action went out

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    @property
    def detecting(self) -> bool:
        """Answered, not in the agent queue, not known to be a machine, not routed: AMD and the
        message are still deciding."""
        return self.answered and self.queued_at is None and self.verdict is not False and not self.routed

    @property
    def waiting(self) -> bool:
        """In the agent queue, not connected to an agent (nor dropped) yet."""
        return self.queued_at is not None and not self.routed

    async def wait_for_cause(self, grace: float) -> None:
        """Return once the failure's cause is known, or after ``grace`` seconds: the
        OriginateResponse may have come before the channel events (or there is no channel)."""
        try:
            await asyncio.wait_for(self.cause_in.wait(), grace)
        except TimeoutError:
            pass

    def _check_cause(self) -> None:
        if cause_known(self.causes, self.legs, self.legs_down):
            self.cause_in.set()


@dataclass(frozen=True)
class CallStages:
    """One campaign's calls holding a line, by stage: what pacing counts (and a live view can show)."""

    lines: int  # calls holding a line
    ringing_ages: tuple[float, ...]  # how long (call time) each unanswered call has been ringing
    detecting: int  # answered, still being told apart (Call.detecting): in AMD, or a person in the IVR
    waiting: int  # waiting in the agent queue (Call.waiting)
    in_ivr: int = 0  # of ``detecting``, a person (AMD said so) hearing the message, pressing keys

    @property
    def in_detection(self) -> int:
        """Answered calls whose AMD verdict is not known yet."""
        return self.detecting - self.in_ivr


class CallTracker:
    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}

    def add(self, call: Call) -> Call:
        self.calls[call.attempt_id] = call
        return call

    def get(self, uniqueid: str | None) -> Call | None:
        return self.calls.get(attempt_id_from_uniqueid(uniqueid or ""))

    def remove(self, attempt_id: str) -> None:
        self.calls.pop(attempt_id, None)

    def active(self, campaign_id: int | None = None) -> list[Call]:
        """Calls holding a line: sent and not hung up yet (optionally of one campaign)."""
        return [c for c in self.calls.values()
                if not c.ended.is_set() and (campaign_id is None or c.campaign_id == campaign_id)]

    def stages(self, campaign_id: int, now: float) -> CallStages:
        ours = self.active(campaign_id)
        return CallStages(lines=len(ours), ringing_ages=tuple(now - c.sent_at for c in ours if not c.answered),
                          detecting=sum(1 for c in ours if c.detecting), waiting=sum(1 for c in ours if c.waiting),
                          in_ivr=sum(1 for c in ours if c.detecting and c.verdict))

    def __len__(self) -> int:
        return len(self.calls)

    # --- AMI events --------------------------------------------------------------------

    def on_newchannel(self, event: dict) -> None:
        uniqueid = event.get("Uniqueid") or ""
        call = self.get(uniqueid)
        if call is not None:
            call.channel_created = True
            call.legs.add(uniqueid)

    def on_hangup(self, event: dict) -> Call | None:
        """Record the cause; the call ends when its main channel (Uniqueid = attempt id) hangs up."""
        uniqueid = event.get("Uniqueid") or ""
        call = self.get(uniqueid)
        if call is None:
            return None
        call.channel_created = True
        call.legs.add(uniqueid)
        call.legs_down.add(uniqueid)
        try:
            call.causes.append(int(event.get("Cause", "0") or 0))
        except ValueError:
            pass
        call._check_cause()
        if uniqueid == call.attempt_id:
            call.ended.set()
            return call
        return None
