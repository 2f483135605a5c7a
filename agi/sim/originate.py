"""One AMI Originate, as tests/traces/ami-originate-*.txt show it: the scenario for the dialed
number, the channel(s) and their events, the OriginateResponse, then the dialplan on answer.

The number is taken from the Originate Channel (``PJSIP/+15551234567@trunk`` -> ``+15551234567``,
``Local/busy@callee`` -> ``busy``). ``faults.response_first`` gives a share of failed calls the
order a loaded Asterisk shows (agi.sim.faults): the OriginateResponse first, the call's own channel
events a moment later. A Local channel (two halves) is agi.sim.local_call.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING

from agi.rules.classify import (
    REASON_ANSWERED,
    REASON_BUSY,
    REASON_CONGESTION,
    REASON_FAILURE,
    REASON_RING_TIMEOUT,
)
from agi.sim.callee import far_end
from agi.sim.channels import BUSY, DOWN, RINGING, UP, Channel, Fields, cid
from agi.sim.local_call import run_local
from agi.sim.pbx import DialplanRunner
from agi.sim.record import CallRecord
from agi.sim.scenario import FAILURE_CAUSE, Network, Scenario

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.simulator import Simulator

# Channel technologies the simulated switch can create; any other gives "no channel" (trace h1)
KNOWN_TECHS = frozenset({"PJSIP", "SIP", "Local", "IAX2", "DAHDI"})
DEFAULT_TIMEOUT_MS = 30000  # manager.c: Originate Timeout default (ms)


def number_of(dial: str) -> str:
    """The dialed number in an Originate Channel.

    ``PJSIP/+1555@trunk`` -> ``+1555``; ``PJSIP/trunk/sip:+1555@host`` -> ``+1555``;
    ``SIP/trunk/5551234`` -> ``5551234``; ``Local/busy@callee/n`` -> ``busy``.
    """
    tech, _, resource = dial.partition("/")
    if tech == "Local":
        return resource.split("/", 1)[0].split("@", 1)[0]
    last = resource.rsplit("/", 1)[-1]
    last = re.sub(r"^sips?:", "", last)
    return last.split("@", 1)[0]


def endpoint_of(resource: str) -> str:
    """The endpoint/trunk a channel is named after: ``+1555@trunk`` -> trunk, ``trunk/sip:..`` -> trunk."""
    if "/" in resource:
        return resource.split("/", 1)[0]
    return resource.split("@", 1)[1] if "@" in resource else resource


def parse_callerid(value: str) -> tuple[str, str]:
    """'"Acme Campaign" <15550001111>' -> ("Acme Campaign", "15550001111")."""
    value = value.strip()
    m = re.fullmatch(r'(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>', value)
    if m:
        return (m.group(1) if m.group(1) is not None else (m.group(2) or "").strip()), m.group(3)
    return "", value


class Call:
    """One Originate: the channel(s), the network outcome, then the dialplan on answer."""

    def __init__(self, *, sim: "Simulator", dial: str, action_id: str | None, channel_id: str, other_id: str,
                 context: str, exten: str, priority: int, timeout: float, cid_name: str, cid_num: str,
                 variables: list[tuple[str, str]]) -> None:
        self.sim = sim
        self.dial = dial
        self.action_id = action_id
        self.channel_id = channel_id or sim.new_uniqueid()
        self.other_id = other_id
        self.context, self.exten, self.priority = context, exten, priority
        self.timeout = timeout
        self.cid_name, self.cid_num = cid_name, cid_num
        self.variables = variables
        self.tech, _, self.resource = dial.partition("/")
        self.number = number_of(dial)
        self.reason: int | None = None
        self.decided = asyncio.Event()
        self.scenario: Scenario | None = None
        self.rec: CallRecord | None = None
        self.response_first = False  # a failure whose OriginateResponse goes out before its channel events
        self._held: list[tuple[str, Fields]] | None = None  # those events, until the response is out

    def publish(self, event: str, fields: Fields) -> None:
        """The call's channel events: to the AMI sessions, or held while the response goes first."""
        if self._held is not None:
            self._held.append((event, fields))
        else:
            self.sim.publish(event, fields)

    async def _release(self) -> None:
        """The message router catches up: the held channel events, in order, a moment after the response."""
        await asyncio.sleep(self.sim.faults.router_lag)
        self._flush()

    def _flush(self) -> None:
        held, self._held = self._held or [], None
        for event, fields in held:
            self.sim.publish(event, fields)

    # OriginateResponse (docs/outcomes.md: on Failure Channel is the dial string as sent; on Success the real name)
    def originate_response(self, success: bool, reason: int, channel: str) -> None:
        self.reason = reason
        fields: Fields = []
        if self.action_id is not None:
            fields.append(("ActionID", self.action_id))
        fields += [
            ("Response", "Success" if success else "Failure"), ("Channel", channel), ("Context", self.context),
            ("Exten", self.exten), ("Reason", str(reason)), ("Uniqueid", self.channel_id),
            ("CallerIDNum", cid(self.cid_num)), ("CallerIDName", cid(self.cid_name)),
        ]
        self.sim.publish("OriginateResponse", fields)  # the originate thread writes it itself
        if self._held is not None:
            self.sim.spawn(self._release())
        if self.rec is not None:
            self.rec.reason = reason
            self.rec.response = "Success" if success else "Failure"
        self.decided.set()

    def prepare(self, fixed: Scenario | None = None) -> None:
        """Choose the scenario (``fixed``: an agent's phone, agi.sim.agent_phone) and enter the call in
        the record, before the Originate is answered, so a test reading the record after "Originate
        successfully queued" always finds it."""
        sim = self.sim
        note = ""
        if fixed is not None:
            scenario = fixed
        else:
            try:
                scenario = sim.plan.choose(self.number)
            except LookupError as e:
                scenario = Scenario(name="no_channel", network=Network.NO_CHANNEL)
                note = str(e)
        if self.tech not in KNOWN_TECHS:
            scenario = scenario.with_(network=Network.NO_CHANNEL, name="no_channel")
        self.scenario = scenario
        nth = sim.dials.get(self.number, 0)
        sim.dials[self.number] = nth + 1
        if scenario.network not in (Network.ANSWER, Network.NO_CHANNEL):  # a failure with channel events
            self.response_first = sim.faults.is_response_first(self.number, nth)
        if self.response_first:
            self._held = []
        self.rec = CallRecord(
            channel_id=self.channel_id, number=self.number, dial_string=self.dial, scenario=scenario.name,
            network=scenario.network.value, action_id=self.action_id or "", originated_at=sim.clock.now(),
            variables=dict(self.variables), response_first=self.response_first,
        )
        if note:
            self.rec.notes.append(note)
        sim.record.originate(self.rec)

    async def run(self) -> None:
        sim = self.sim
        if self.rec is None:
            self.prepare()
        scenario, rec = self.scenario, self.rec
        assert scenario is not None and rec is not None
        if scenario.network is Network.NO_CHANNEL:
            self.originate_response(False, REASON_FAILURE, self.dial)
            rec.ended_at = sim.clock.now()
            return
        sim.record.line_up()
        try:
            if self.tech == "Local":
                await run_local(self, scenario)
            else:
                await self.run_trunk(scenario)
        finally:
            sim.record.line_down()
            self.rec.ended_at = sim.clock.now()
            if not self.decided.is_set():
                self.decided.set()
                self._flush()  # no response was sent (cancelled): nothing is held back for ever

    # ---- channel set-up ----------------------------------------------------------------------
    def setup_vars(self, chan: Channel, reverse: bool) -> None:
        for k, v in (reversed(self.variables) if reverse else self.variables):
            chan.set_var(k, v)

    def set_callerid(self, chan: Channel, *, both: bool = False) -> None:
        """NewCallerid + NewConnectedLine; the ;2 half of a Local pair gets both at once (traces)."""
        if not (self.cid_num or self.cid_name):
            return
        chan.callerid_num, chan.callerid_name = self.cid_num, self.cid_name
        if both:
            chan.connected_num, chan.connected_name = self.cid_num, self.cid_name
        chan.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        chan.connected_num, chan.connected_name = self.cid_num, self.cid_name
        chan.emit("NewConnectedLine")

    def dial_begin(self, dest: Channel, dialstring: str) -> None:
        dest_fields = dest.header("Dest")
        self.publish("DialBegin", dest_fields + [("DialString", dialstring)])
        if dest.record is not None:
            dest.record.on_event(dest, "DialBegin", [("DialString", dialstring)])

    def dial_state(self, dest: Channel, event: str, status: str) -> None:
        self.publish(event, dest.header("Dest") + [("DialStatus", status)])

    async def ring(self, scenario: Scenario) -> bool:
        """Ring for the scenario's ring time; False when the Originate Timeout ran out first."""
        ring = scenario.ring_time if scenario.network is not Network.NO_ANSWER else float("inf")
        if ring >= self.timeout:
            await self.sim.clock.sleep(self.timeout)
            return False
        await self.sim.clock.sleep(ring)
        return True

    # ---- PJSIP/<number>@<trunk> and other techs: one channel -----------------------------------
    async def run_trunk(self, sc: Scenario) -> None:
        sim = self.sim
        endpoint = endpoint_of(self.resource)
        chan = sim.new_channel(f"{self.tech}/{endpoint}", uniqueid=self.channel_id, linkedid=self.channel_id,
                               context=self.context, exten=self.exten, priority=self.priority, state=DOWN,
                               record=self.rec, callee=sc.callee, sink=self.publish)
        self.rec.channel = chan.name  # type: ignore[union-attr]
        self.setup_vars(chan, reverse=True)
        self.set_callerid(chan)
        net = sc.network
        if net is Network.NO_EXTEN:
            self.originate_response(False, REASON_FAILURE, self.dial)
            chan.finish(0)
            return
        self.dial_begin(chan, self.resource)
        chan.newstate(RINGING)
        self.dial_state(chan, "DialState", "RINGING")
        if not await self.ring(sc):
            chan.emit("HangupRequest", [("Cause", "19")])
            self.dial_state(chan, "DialEnd", "NOANSWER")
            self.originate_response(False, REASON_RING_TIMEOUT, self.dial)
            chan.finish(19)
            return
        if net is not Network.ANSWER:
            cause = FAILURE_CAUSE[net]
            if net is Network.BUSY:
                chan.newstate(BUSY)
            status = {Network.BUSY: "BUSY", Network.CONGESTION: "CONGESTION"}.get(net, "NOANSWER")
            reason = {Network.BUSY: REASON_BUSY, Network.CONGESTION: REASON_CONGESTION}.get(net, REASON_FAILURE)
            chan.emit("HangupRequest", [("Cause", str(cause))])
            self.dial_state(chan, "DialEnd", status)
            self.originate_response(False, reason, self.dial)
            chan.finish(cause)
            return
        chan.newstate(UP)
        self.dial_state(chan, "DialEnd", "ANSWER")
        self.originate_response(True, REASON_ANSWERED, chan.name)
        chan.answered_at = sim.clock.now()
        self.rec.answered_at = chan.answered_at  # type: ignore[union-attr]
        await self.run_dialplan(chan, sc)
        chan.finish()

    async def run_dialplan(self, chan: Channel, sc: Scenario) -> None:
        sim = self.sim
        runner = DialplanRunner(sim.dialplan, scenario=sc, agi=sim.run_agi,
                                defaults={"DIALER_AGI": f"{sim.agi_host}:{sim.agi_port}"})
        far_end(chan)  # schedules the person's own hang-up (Callee.hangup_after)
        if not sim.dialplan.find(self.context, self.exten, self.priority):
            chan.hangup(16)
        try:
            await runner.run(chan, self.context, self.exten, self.priority)
        finally:
            far_end(chan).cancel()
