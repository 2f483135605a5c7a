"""An agent's phone the preview mode rings first, and the ``Dial()`` its dialplan runs to the person.

The originator sends ``Originate Channel=<agent interface> Context=dialer-preview`` (dialplan/dialer.conf);
a phone registered with ``Simulator.add_phone`` answers it after ``answer_after`` seconds (or rings out
when it does not answer), then runs that context. ``Dial(<dest>,<timeout>)`` there rings the person
through the scenario plan as app_dial.c does it:

- DialBegin / DialEnd on the agent's channel with the person's leg as Dest, DIALSTATUS on the agent's
  channel: ANSWER, BUSY (cause 17), NOANSWER (rang to the timeout, or a normal clearing), CONGESTION
  (cause 34) and, for any other cause (1 unallocated, 21 rejected, 22 number changed), CHANUNAVAIL
  (app_dial.c handle_cause: every cause but busy, congestion, no answer and normal clearing counts
  as "no channel"); the person's leg hangs up with the cause (Hangup ``Cause``);
- answered: a bridge until one side hangs up; when the person hangs up first Dial returns -1 and the
  agent's channel is hung up (no ``g`` option), as ``EXEC Dial`` gives ``200 result=-1``
  (docs/outcomes.md); a failed Dial returns 0 and the dialplan goes on.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agi.rules.classify import REASON_ANSWERED, REASON_RING_TIMEOUT
from agi.sim.callee import Callee
from agi.sim.channels import BUSY, DOWN, RINGING, UP, Bridge, Channel, inherit_variables
from agi.sim.line import set_var
from agi.sim.originate import Call, endpoint_of, number_of
from agi.sim.pbx import DialplanRunner
from agi.sim.scenario import FAILURE_CAUSE, Network, Scenario

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.simulator import Simulator

# app_dial.c handle_cause: busy and congestion have their own DIALSTATUS; 16/19 leave NOANSWER
DIALSTATUS_OF_CAUSE = {17: "BUSY", 34: "CONGESTION", 16: "NOANSWER", 19: "NOANSWER"}
UNAVAILABLE = "CHANUNAVAIL"


@dataclass
class Phone:
    """An agent's device: answers an Originate after ``answer_after`` s (never when ``answers`` is
    False); hangs up ``talk_seconds`` into a conversation the person has not ended yet."""

    interface: str
    answers: bool = True
    answer_after: float = 1.0
    talk_seconds: float = 20.0


PHONE_SCENARIO = Scenario("agent_phone", network=Network.ANSWER)


async def run_phone(call: Call, phone: Phone) -> None:
    """The agent's leg of a preview call (``call`` prepared with PHONE_SCENARIO), as Call.run does a
    callee's: the line is up until the agent's channel is gone."""
    sim = call.sim
    sim.record.line_up()
    try:
        await _ring_agent(call, phone)
    finally:
        sim.record.line_down()
        call.rec.ended_at = sim.clock.now()  # type: ignore[union-attr]
        if not call.decided.is_set():
            call.decided.set()


async def _ring_agent(call: Call, phone: Phone) -> None:
    sim = call.sim
    chan = sim.new_channel(phone.interface, uniqueid=call.channel_id, linkedid=call.channel_id,
                           context=call.context, exten=call.exten, priority=call.priority, state=DOWN,
                           record=call.rec, sink=call.publish)
    call.rec.channel = chan.name  # type: ignore[union-attr]
    call.setup_vars(chan, reverse=True)
    call.set_callerid(chan)
    call.dial_begin(chan, phone.interface.split("/", 1)[-1])
    chan.newstate(RINGING)
    call.dial_state(chan, "DialState", "RINGING")
    if not phone.answers or phone.answer_after >= call.timeout:
        await sim.clock.sleep(call.timeout)
        chan.emit("HangupRequest", [("Cause", "19")])
        call.dial_state(chan, "DialEnd", "NOANSWER")
        call.originate_response(False, REASON_RING_TIMEOUT, call.dial)
        chan.finish(19)
        return
    await sim.clock.sleep(phone.answer_after)
    chan.newstate(UP)
    call.dial_state(chan, "DialEnd", "ANSWER")
    call.originate_response(True, REASON_ANSWERED, chan.name)
    chan.answered_at = sim.clock.now()
    call.rec.answered_at = chan.answered_at  # type: ignore[union-attr]
    runner = PhoneRunner(sim, phone, scenario=call.scenario)
    await runner.run(chan, call.context, call.exten, call.priority)
    chan.finish()


class PhoneRunner(DialplanRunner):
    """The dialplan on the agent's channel, with ``Dial()`` to the person (the scenario plan's fate)."""

    def __init__(self, sim: "Simulator", phone: Phone, *, scenario: Any) -> None:
        super().__init__(sim.dialplan, scenario=scenario, agi=sim.run_agi,
                         defaults={"DIALER_AGI": f"{sim.agi_host}:{sim.agi_port}"})
        self.sim = sim
        self.phone = phone

    async def app_dial(self, chan: Channel, args: str) -> None:
        parts = (args.split(",") + ["", ""])[:3]
        dest, timeout = parts[0].strip(), float(parts[1] or 0) or 60.0
        status, cause = await dial_person(self.sim, chan, dest, timeout, self.phone)
        set_var(chan, "DIALSTATUS", status)
        if chan.record is not None:
            chan.record.notes.append(f"Dial {dest}: {status} cause {cause}")
        if status == "ANSWER" and cause == 16 and not chan.hangup_requested.is_set():
            chan.request_hangup(16, soft=True)  # Dial returned -1: the person hung up


async def dial_person(sim: "Simulator", caller: Channel, dest: str, timeout: float, phone: Phone) -> tuple[str, int]:
    """Ring ``dest`` from ``caller`` (the agent's channel): (DIALSTATUS, the person's hang-up cause)."""
    number = number_of(dest)
    try:
        scenario = sim.plan.choose(number)
    except LookupError:
        return UNAVAILABLE, 0
    tech, _, resource = dest.partition("/")
    person = sim.new_channel(f"{tech}/{endpoint_of(resource)}", linkedid=caller.linkedid, context="default",
                             exten="s", state=DOWN, callee=scenario.callee)
    inherit_variables(caller, person)
    person.callerid_num, person.callerid_name = caller.callerid_num, caller.callerid_name
    if caller.record is not None:
        caller.record.notes.append(f"dialed {number} scenario={scenario.name} network={scenario.network.value}")
    caller.emit("DialBegin", person.header("Dest") + [("DialString", resource)])
    person.newstate(RINGING)
    caller.emit("DialState", person.header("Dest") + [("DialStatus", "RINGING")])
    ring = scenario.ring_time if scenario.network is not Network.NO_ANSWER else float("inf")
    if ring >= timeout:
        gone = await _wait(sim, caller, timeout)
        status = "CANCEL" if gone else "NOANSWER"
        caller.emit("DialEnd", person.header("Dest") + [("DialStatus", status)])
        person.finish(0 if gone else 19)
        return status, person.hangupcause
    if await _wait(sim, caller, ring):
        caller.emit("DialEnd", person.header("Dest") + [("DialStatus", "CANCEL")])
        person.finish(0)
        return "CANCEL", 0
    if scenario.network is not Network.ANSWER:
        cause = FAILURE_CAUSE.get(scenario.network, 0) or 0
        status = DIALSTATUS_OF_CAUSE.get(cause, UNAVAILABLE)
        if cause == 17:
            person.newstate(BUSY)
        person.emit("HangupRequest", [("Cause", str(cause))])
        caller.emit("DialEnd", person.header("Dest") + [("DialStatus", status)])
        person.finish(cause)
        caller.hangupcause = cause  # HANGUPCAUSE after a failed Dial: the person's leg's
        return status, cause
    return await _talk(sim, caller, person, scenario.callee, phone)


async def _talk(sim: "Simulator", caller: Channel, person: Channel, callee: Callee, phone: Phone) -> tuple[str, int]:
    person.newstate(UP)
    person.answered_at = sim.clock.now()
    caller.emit("DialEnd", person.header("Dest") + [("DialStatus", "ANSWER")])
    bridge = Bridge(str(uuid.uuid4()), sim.publish)
    bridge.create()
    bridge.enter(person)
    bridge.enter(caller)
    talk = callee.hangup_after_bridge if callee.hangup_after_bridge is not None else callee.hangup_after
    person_first = talk is not None and talk < phone.talk_seconds
    agent_gone = await _wait(sim, caller, talk if person_first else phone.talk_seconds)
    bridge.leave(person)
    if person_first and not agent_gone:
        person.emit("HangupRequest", [("Cause", str(callee.hangup_cause))])
        person.finish(callee.hangup_cause)
        caller.hangupcause = callee.hangup_cause
        cause = callee.hangup_cause
    else:  # the agent put the phone down: the person's leg is hung up by the bridge
        if not caller.hangup_requested.is_set():
            caller.request_hangup(16, soft=True)
        person.emit("SoftHangupRequest", [("Cause", "16")])
        person.finish(16)
        cause = 0
    bridge.leave(caller)
    bridge.destroy()
    return "ANSWER", cause


async def _wait(sim: "Simulator", chan: Channel, seconds: float) -> bool:
    """Sleep simulated ``seconds``; True if ``chan`` got a hang-up request meanwhile."""
    if chan.hangup_requested.is_set():
        return True
    try:
        await asyncio.wait_for(chan.hangup_requested.wait(), sim.clock.real(seconds))
        return True
    except asyncio.TimeoutError:
        return False
