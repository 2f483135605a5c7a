"""The dialplan applications a FastAGI server runs with ``EXEC``, as Asterisk 22 runs them on the
channel: Playback/Background, Wait, WaitForSilence, NoOp, Answer, Hangup, Set, Dial, Queue (the
queues are agi.sim.queues). Each returns the application's result, which EXEC replies with."""

from __future__ import annotations

from typing import TYPE_CHECKING
from collections.abc import Awaitable, Callable

from agi.sim.line import set_var
from agi.sim.queues import QueueSystem
from agi.sim.sounds import sound_samples

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.agi_session import AgiSession


async def _app_playback(s: AgiSession, data: str) -> int:
    name = data.split(",")[0]
    if s.dead or sound_samples(name) is None:
        set_var(s.line, "PLAYBACKSTATUS", "FAILED")
        return 0
    played = await s.play(name, "")
    if played is None:
        return -1
    set_var(s.line, "PLAYBACKSTATUS", "SUCCESS")
    return 0


async def _app_wait(s: AgiSession, data: str) -> int:
    try:
        seconds = float(data or 0)
    except ValueError:
        seconds = 0.0
    if s.dead:
        return -1
    end = s.clock.now() + seconds
    if not await s.sleep_until(end):
        return -1
    s.lose_keys_until(end)
    return 0


async def _app_wait_for_silence(s: AgiSession, data: str) -> int:
    """WaitForSilence(ms,iterations,timeout): WAITSTATUS=SILENCE or TIMEOUT (app_waitforsilence.c)."""
    parts = (data.split(",") + ["", "", ""])[:3]
    ms = int(parts[0] or 1000)
    timeout = float(parts[2] or 0)
    if s.dead:
        set_var(s.line, "WAITSTATUS", "HANGUP")
        return -1
    now = s.clock.now()
    silent_from = max(now, s.far.answered_at + s.far.callee.silence_from())
    done_at = silent_from + ms / 1000
    if timeout > 0 and done_at > now + timeout:
        ok = await s.sleep_until(now + timeout)
        status = "TIMEOUT"
    else:
        ok = await s.sleep_until(done_at)
        status = "SILENCE"
    if not ok:
        set_var(s.line, "WAITSTATUS", "HANGUP")
        return -1
    s.lose_keys_until(s.clock.now())
    set_var(s.line, "WAITSTATUS", status)
    return 0


async def _app_noop(s: AgiSession, data: str) -> int:
    return 0


async def _app_answer(s: AgiSession, data: str) -> int:
    return -1 if s.dead else 0


async def _app_hangup(s: AgiSession, data: str) -> int:
    if not s.dead:
        s.result.server_hung_up = True
        s.line.hangup(int(data) if data.isdigit() else 16)
    return -1


async def _app_set(s: AgiSession, data: str) -> int:
    name, _, value = data.partition("=")
    if name:
        set_var(s.line, name.strip(), value)
    return 0


DIAL_RING_SECONDS = 1.0
DIAL_TALK_SECONDS = 4.3  # agi-session-human-*: EXEC Dial Local/agent@agents,20 lasted ~5.35 s


async def _app_dial(s: AgiSession, data: str) -> int:
    """Dial(dest,timeout): the far party answers after a ring, talks, hangs up (result -1, DIALSTATUS)."""
    if s.dead:
        return -1
    exec_dial = getattr(s.switch, "exec_dial", None)
    if exec_dial is not None:
        res = await exec_dial(s, data)
        if res is not None:  # the switch rang a channel of its own (Local/x@ctx with that extension)
            return res
    for name in ("ANSWEREDTIME", "ANSWEREDTIME_MS", "DIALEDTIME", "DIALEDTIME_MS"):
        set_var(s.line, name, "")
    start = s.clock.now()
    if not await s.sleep_until(start + DIAL_RING_SECONDS):
        set_var(s.line, "DIALSTATUS", "CANCEL")
        return -1
    answered = s.clock.now()
    ok = await s.sleep_until(answered + DIAL_TALK_SECONDS)
    s.lose_keys_until(s.clock.now())
    end = s.clock.now()
    set_var(s.line, "DIALEDTIME", str(int(end - start)))
    set_var(s.line, "ANSWEREDTIME", str(int(end - answered)))
    set_var(s.line, "DIALSTATUS", "ANSWER")
    if ok and hasattr(s.line, "hangupcause"):
        s.line.hangupcause = 16  # the called party's normal clearing becomes our HANGUPCAUSE
    return -1  # app_dial returns -1 when the called party hangs up: read DIALSTATUS (docs/outcomes.md)


async def _app_queue(s: AgiSession, data: str) -> int:
    if s.queues is None:  # no queue configured: every queue is unknown
        s.queues = QueueSystem()
    return await s.queues.run_caller(s, data)


APPS: dict[str, Callable[[AgiSession, str], Awaitable[int]]] = {
    "playback": _app_playback,
    "background": _app_playback,
    "wait": _app_wait,
    "waitforsilence": _app_wait_for_silence,
    "noop": _app_noop,
    "answer": _app_answer,
    "hangup": _app_hangup,
    "set": _app_set,
    "dial": _app_dial,
    "queue": _app_queue,
}
