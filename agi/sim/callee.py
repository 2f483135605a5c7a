"""The far end of a simulated call once it is answered: a person, an answering machine, a fax, silence.

``Callee`` is the plan (plain data, built by the scenario plan with its seeded randomness);
``FarEnd`` is that plan running on one call: it knows when the call was answered and when each
prompt started, so it can say which key the person presses when, and when they hang up.

How a person is modelled (docs/outcomes.md "DTMF"): a person presses keys in reaction to what they hear.
``KeyPress(key, at, prompt=i)`` presses ``key`` ``at`` seconds after the i-th prompt (0-based) of
the call started; ``prompt=None`` counts from the answer instead (like the capture rig's
``SendDTMF`` callees). A prompt is every command that plays audio to the person: ``STREAM FILE``,
``GET DATA``, ``GET OPTION``, ``CONTROL STREAM FILE``, ``EXEC Playback``/``Background``. A key is
delivered only if an AGI command is reading digits at that moment (``STREAM FILE`` with the key
among its escape digits, ``GET DATA``, ``WAIT FOR DIGIT``); otherwise it is lost, as on a real
Asterisk (during ``AMD()``, between two commands, during ``EXEC Playback``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from agi.outcomes import AmdStatus

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.line import SimLine

HUMAN, MACHINE, FAX, NO_MEDIA = "human", "machine", "fax", "no_media"
KINDS = (HUMAN, MACHINE, FAX, NO_MEDIA)

DTMF_KEYS = "0123456789*#ABCD"

# What AMD() said on the real Asterisk 22.10.1 for each kind (tests/traces/INDEX.txt), and about
# how long after answer it said it (ami-originate-*.txt: AMDSTATUS VarSet - OriginateResponse).
AMD_BY_KIND: dict[str, tuple[AmdStatus, str, float]] = {
    HUMAN: (AmdStatus.HUMAN, "HUMAN-800-800", 1.92),
    MACHINE: (AmdStatus.MACHINE, "MAXWORDS-3-2", 1.77),
    NO_MEDIA: (AmdStatus.NOTSURE, "TOOLONG-4939", 5.04),
    FAX: (AmdStatus.HUMAN, "HUMAN-800-800", 1.92),  # AMD alone calls a CNG tone HUMAN
}
# With FAXOPT(faxdetect)=yes a CNG tone is recognised ~1.1 s after answer (ami-originate-fax-cng.txt).
FAX_DETECT_SECONDS = 1.12


@dataclass(frozen=True)
class KeyPress:
    """One DTMF key: ``at`` seconds after prompt ``prompt`` started (None: after the answer)."""

    key: str
    at: float
    prompt: int | None = None

    def __post_init__(self) -> None:
        if len(self.key) != 1 or self.key not in DTMF_KEYS:
            raise ValueError(f"DTMF key {self.key!r} is not one of {DTMF_KEYS}")
        if self.at < 0:
            raise ValueError("a key press time must be >= 0 seconds")


@dataclass
class Callee:
    """What the far end does once answered. All times are simulated seconds.

    Hang-up timing (the first that applies wins; None = never, the far end waits for us):
    - ``hangup_after``: seconds after the answer, whatever is happening;
    - ``hangup_after_prompt=(i, d)``: ``d`` seconds after prompt i started (hangs up during the message);
    - ``hangup_in_queue_after``: seconds after entering the agent queue, if no agent took the call yet;
    - ``hangup_after_bridge``: seconds into the conversation with the agent; if the agent's talk time
      is shorter, the agent hangs up first and the person stays on the line.
    """

    kind: str = HUMAN
    keys: tuple[KeyPress, ...] = ()
    hangup_after: float | None = None
    hangup_after_prompt: tuple[int, float] | None = None
    hangup_in_queue_after: float | None = None
    hangup_after_bridge: float | None = None
    hangup_cause: int = 16  # Q.850 normal clearing, what a phone put down sends
    # Answering machine: spoken greeting, a short gap, the beep, then silence (recording).
    greeting_seconds: float = 11.5
    beep_gap_seconds: float = 0.7
    beep_seconds: float = 0.5
    # Person: "Hello?" then silence.
    hello_seconds: float = 0.8
    # AMD outcome; None = what the real Asterisk said for this kind (AMD_BY_KIND).
    amd_status: AmdStatus | str | None = None
    amd_cause: str | None = None
    amd_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"callee kind {self.kind!r} is not one of {', '.join(KINDS)}")
        self.keys = tuple(self.keys)

    def amd(self) -> tuple[str, str, float]:
        """(AMDSTATUS, AMDCAUSE, seconds after answer) for ``AMD()`` without fax detection."""
        status, cause, seconds = AMD_BY_KIND[self.kind]
        return (
            str(self.amd_status if self.amd_status is not None else status),
            self.amd_cause if self.amd_cause is not None else cause,
            self.amd_seconds if self.amd_seconds is not None else seconds,
        )

    def silence_from(self) -> float:
        """Seconds after answer from which the far end is silent for good (WaitForSilence)."""
        if self.kind == MACHINE:
            return self.greeting_seconds + self.beep_gap_seconds + self.beep_seconds
        if self.kind == FAX:
            return float("inf")  # CNG tone bursts go on until someone hangs up
        if self.kind == NO_MEDIA:
            return 0.0
        return self.hello_seconds


class FarEnd:
    """A ``Callee`` running on one call: answer time, prompts heard, keys used or lost."""

    def __init__(self, callee: Callee, answered_at: float) -> None:
        self.callee = callee
        self.answered_at = answered_at
        self.prompts: list[float] = []  # simulated start time of each prompt
        self.cursor = answered_at  # keys before this time are delivered or lost
        self.used: list[tuple[float, str]] = []
        self.lost: list[tuple[float, str]] = []
        self._delivered: set[int] = set()
        self._tasks: list[asyncio.Task] = []

    # ---- keys -----------------------------------------------------------------------------
    def _schedule(self) -> list[tuple[float, int, str]]:
        out = []
        for i, kp in enumerate(self.callee.keys):
            if i in self._delivered:
                continue
            if kp.prompt is None:
                t = self.answered_at + kp.at
            elif kp.prompt < len(self.prompts):
                t = self.prompts[kp.prompt] + kp.at
            else:
                continue  # that prompt has not been heard yet
            out.append((t, i, kp.key))
        out.sort()
        return out

    def listen_from(self, now: float) -> list[tuple[float, str]]:
        """A reading command starts at ``now``: keys pressed since the last one are lost."""
        lost = []
        for t, i, key in self._schedule():
            if t < now:
                self._delivered.add(i)
                lost.append((t, key))
        self.lost.extend(lost)
        self.cursor = max(self.cursor, now)
        return lost

    def next_key(self) -> tuple[float, str] | None:
        """The next key press not yet delivered or lost, as (simulated time, key)."""
        for t, _i, key in self._schedule():
            if t >= self.cursor:
                return t, key
        return None

    def take_key(self, t: float, key: str, *, used: bool) -> None:
        for tt, i, k in self._schedule():
            if tt == t and k == key:
                self._delivered.add(i)
                break
        self.cursor = max(self.cursor, t)
        (self.used if used else self.lost).append((t, key))

    # ---- prompts and hang-ups -------------------------------------------------------------
    def prompt_started(self, line: SimLine, now: float) -> int:
        """A prompt starts playing to the person; returns its index."""
        self.prompts.append(now)
        index = len(self.prompts) - 1
        hp = self.callee.hangup_after_prompt
        if hp is not None and hp[0] == index:
            self.hang_up_at(line, now + hp[1])
        return index

    def hang_up_at(self, line: SimLine, when: float) -> None:
        """The far end puts the phone down at simulated time ``when`` (earliest request wins)."""

        async def later() -> None:
            await line.clock.sleep(when - line.clock.now())
            if not _is_dead(line):
                far_end_hangup(line, self.callee.hangup_cause)

        self._tasks.append(asyncio.get_running_loop().create_task(later()))

    def cancel(self) -> None:
        """The call is over: forget pending hang-ups."""
        for task in self._tasks:
            if not task.done():
                task.cancel()


_FAR_ENDS: WeakKeyDictionary[Any, FarEnd] = WeakKeyDictionary()


def far_end(line: SimLine) -> FarEnd:
    """The running far end of ``line`` (created on first use).

    Answer time: ``line.answered_at`` when the channel has it, else the moment of first use minus
    the AMD time of the callee. On creation a ``hangup_after`` plan is scheduled.
    """
    fe = _FAR_ENDS.get(line)
    if fe is None:
        callee = line.callee if isinstance(line.callee, Callee) else Callee()
        answered = getattr(line, "answered_at", None)
        if answered is None:
            answered = line.clock.now() - callee.amd()[2]
        fe = FarEnd(callee, answered)
        _FAR_ENDS[line] = fe
        if callee.hangup_after is not None:
            try:
                fe.hang_up_at(line, answered + callee.hangup_after)
            except RuntimeError:  # no running loop: the caller schedules it later
                pass
    return fe


def _is_dead(line: SimLine) -> bool:
    ev = getattr(line, "hangup_requested", None)
    return line.hungup.is_set() or (ev is not None and ev.is_set())


def far_end_hangup(line: SimLine, cause: int) -> None:
    """The far end hangs up: ``HangupRequest`` on a switch channel, else the protocol's hangup()."""
    request = getattr(line, "request_hangup", None)
    if request is not None:
        request(cause)
    else:
        line.hangup(cause)
