"""The queues' data as app_queue.c keeps it: members (logged in, paused, ringing, on a call, in
after-call work), one queue's waiting callers and statistics, and how AMI and the channel
variables show them (QueueMember fields, the QUEUE* variables)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field, replace
from typing import Any

from agi.sim.line import set_var

# app_queue.c enum agent status as AMI prints it (QueueMember Status)
NOT_INUSE, INUSE, RINGING_STATUS, UNAVAILABLE = 1, 2, 6, 5

# Agent wrap-up keys (agi.outcomes.DEFAULT_KEY_MAP; "" = the agent keys nothing) and how often.
DEFAULT_DISPOSITIONS: dict[str, float] = {"1": 0.35, "2": 0.35, "3": 0.1, "9": 0.05, "": 0.15}


@dataclass(eq=False)
class Member:
    """A queue member (an agent's phone)."""

    interface: str  # e.g. "PJSIP/agent1" or "Local/agent1@agents/n"
    name: str = ""
    logged_in: bool = True
    paused: bool = False
    paused_reason: str = ""
    answers: bool = True  # False: the phone rings and nobody picks up
    mode: str = ""  # the rig's <EXTEN>_MODE for a Local member run by the dialplan; "" = answer/noanswer
    # runtime state
    busy: bool = False  # on a call (InCall=1)
    ringing: bool = False
    acw_until: float = 0.0  # after-call work ends at this simulated time
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0

    def available(self, now: float) -> bool:
        return self.logged_in and not self.paused and not self.busy and not self.ringing and now >= self.acw_until


@dataclass
class QueueConfig:
    """One queue (queues.conf section) and its simulated agents. Times are simulated seconds.

    ``agents=N`` adds members PJSIP/agent1..N ("Agent 1".."Agent N") when ``members`` is empty.
    ``talk_seconds``/``acw_seconds``/``ring_seconds`` are (low, high) uniform ranges.
    """

    name: str
    members: list[Member] = field(default_factory=list)
    agents: int = 0
    joinempty: bool = True
    strategy: str = "ringall"
    ring_seconds: tuple[float, float] = (0.0, 0.0)
    talk_seconds: tuple[float, float] = (30.0, 120.0)
    acw_seconds: tuple[float, float] = (0.0, 0.0)
    dispositions: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_DISPOSITIONS))
    wrapup_key_after: tuple[float, float] = (1.0, 4.0)  # seconds into the wrap-up prompt
    callback_hours: tuple[int, int] | None = (1, 48)  # after key 3 the agent keys the hours, then '#'; None: none

    def __post_init__(self) -> None:
        if not self.members and self.agents:
            self.members = [Member(f"PJSIP/agent{i}", f"Agent {i}") for i in range(1, self.agents + 1)]


@dataclass
class Entry:
    line: Any
    joined: float
    position: int
    cancelled_legs: list[Any] = field(default_factory=list)  # their ;2 halves go after QueueCallerLeave
    rang: bool = False  # a member was rung for this caller (a dial: the caller's CDR forks)

    def drop_cancelled(self) -> None:
        for leg in self.cancelled_legs:
            peer = getattr(leg, "peer", None)
            if peer is not None and getattr(peer, "finish", None) is not None:
                peer.finish(0)
        self.cancelled_legs.clear()


class QueueState:
    def __init__(self, config: QueueConfig, now: float) -> None:
        self.config = config
        self.name = config.name
        # each simulator its own members: a Member holds its calls (busy, CallsTaken, ...), and a
        # config given to two simulators (the tests' shared tables, a restarted sim) shared them
        self.members = [replace(m) for m in config.members]
        for m in self.members:
            m.login_time = int(now)
        self.entries: list[Entry] = []
        self.completed = 0
        self.abandoned = 0
        self.completed_in_sl = 0
        self.holdtime = 0  # rolling averages as app_queue.c keeps them: (3*old + new) / 4
        self.talktime = 0
        self.changed = asyncio.Event()

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    def record_hold(self, seconds: int) -> None:
        self.holdtime = (3 * self.holdtime + seconds) // 4

    def record_talk(self, seconds: int) -> None:
        # the first completed call sets the average outright (QUEUETALKTIME=2 after one 2 s call: queue-bridged)
        self.talktime = seconds if self.completed <= 1 else (3 * self.talktime + seconds) // 4

    def after_call(self, m: Member, end: float, rng: random.Random) -> None:
        """The member's call ended at ``end``: after-call work, then it takes calls again."""
        m.busy = False
        m.acw_until = end + rng.uniform(*self.config.acw_seconds)
        self.notify()


def member_fields(q: QueueState, m: Member, *, location: bool = False) -> dict[str, str]:
    """A member as AMI shows it: QueueMember (``location``) or QueueMemberStatus fields."""
    status = NOT_INUSE if not (m.busy or m.ringing) else INUSE
    head = {"Queue": q.name, "Name" if location else "MemberName": m.name or m.interface}
    head["Location" if location else "Interface"] = m.interface
    head.update({
        "StateInterface": m.interface, "Membership": "static", "Penalty": "0",
        "CallsTaken": str(m.calls_taken), "LastCall": str(m.last_call), "LastPause": str(m.last_pause),
        "LoginTime": str(m.login_time), "InCall": "1" if m.busy else "0", "Status": str(status),
        "Paused": "1" if m.paused else "0", "PausedReason": m.paused_reason,
    })
    if not location:
        head["Ringinuse"] = "0"
    head["Wrapuptime"] = "0"
    return head


def queue_vars(line: Any, q: QueueState, calls: int) -> None:
    """setqueuevar=yes: the QUEUE* variables on ``line``."""
    for name, value in (("QUEUENAME", q.name), ("QUEUEMAX", "0"), ("QUEUESTRATEGY", q.config.strategy),
                        ("QUEUECALLS", str(calls)), ("QUEUEHOLDTIME", str(q.holdtime)),
                        ("QUEUETALKTIME", str(q.talktime)), ("QUEUECOMPLETED", str(q.completed)),
                        ("QUEUEABANDONED", str(q.abandoned)), ("QUEUESRVLEVEL", "0"),
                        ("QUEUESRVLEVELPERF",
                         f"{(100.0 * q.completed_in_sl / q.completed) if q.completed else 0.0:.1f}")):
        set_var(line, name, value)
