"""The Asterisk simulator: AMI server + simulated network + emulated dialplan + FastAGI client.

    sim = Simulator(agi_host="127.0.0.1", agi_port=4573, speed=100.0, plan=ScenarioPlan.mix(seed=1))
    await sim.start()          # sim.ami_port is the bound port
    ...                        # sim.record, sim.faults
    await sim.stop()

Originate rules follow docs/outcomes.md "AMI" and tests/traces/ami-originate-*.txt: the number is taken
from the Originate Channel (``PJSIP/+15551234567@trunk`` -> ``+15551234567``, ``Local/busy@callee``
-> ``busy``) and looked up in the scenario plan. ``faults.response_first`` gives a share of failed
calls the order a loaded Asterisk shows (agi.sim.faults): the OriginateResponse first, the call's
own channel events a moment later.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

from agi.rules.classify import (
    REASON_ANSWERED,
    REASON_BUSY,
    REASON_CONGESTION,
    REASON_FAILURE,
    REASON_RING_TIMEOUT,
)
from agi.sim.ami_server import AmiServer, Message, Session
from agi.sim.channels import BUSY, DOWN, RING, RINGING, UP, Bridge, Channel, Fields, cid, inherit_variables, privilege
from agi.sim.clock import Clock
from agi.sim.dialplan import PROJECT_DIALPLAN, CalleeRunner, Dialplan, DialplanRunner, agi_args_of, wait_or_hangup
from agi.sim.faults import Faults
from agi.sim.record import CallRecord, Record
from agi.sim.scenarios import FAILURE_CAUSE, Network, Scenario, ScenarioPlan

# Channel technologies the simulated switch can create; any other gives "no channel" (trace h1)
KNOWN_TECHS = frozenset({"PJSIP", "SIP", "Local", "IAX2", "DAHDI"})
# Far ends that run Hangup(<cause>) without answering (traces f, f2, f3)
HANGUP_CAUSES = frozenset({Network.UNALLOCATED, Network.REJECTED, Network.NUMBER_CHANGED})
DEFAULT_TIMEOUT_MS = 30000  # manager.c: Originate Timeout default (ms)
CALLEE_ANSWER_DELAY = 0.5  # the far end's leg starts its audio ~0.5 s after Answer (traces)


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


class Simulator:
    def __init__(
        self,
        agi_host: str = "127.0.0.1",
        agi_port: int = 4573,
        speed: float = 1.0,
        plan: ScenarioPlan | None = None,
        queues: Mapping[str, Any] | None = None,
        ami_host: str = "127.0.0.1",
        ami_port: int = 5038,
        ami_user: str = "dialer",
        ami_secret: str = "secret",
        ami_read: str = "all",
        dialplan: Dialplan | None = None,
        agi_server_timeout: float = 30.0,
        queue_seed: int = 1,
        agi_connect: tuple[str, int] | None = None,
        sounds: Mapping[str, float] | None = None,
    ) -> None:
        self.agi_host, self.agi_port = agi_host, agi_port
        self.clock = Clock(speed)
        self.speed = speed
        self.plan = plan or ScenarioPlan.mix(seed=1)
        self.ami_host, self.ami_port = ami_host, ami_port
        self.ami_user, self.ami_secret = ami_user, ami_secret
        self.ami_read = ami_read  # the AMI user's read classes (manager.conf read=): events it may see
        self.dialplan = dialplan or PROJECT_DIALPLAN
        self.agi_server_timeout = agi_server_timeout
        self.agi_connect = agi_connect  # connect here whatever the AGI() URL says (trace tests)
        self.sounds = dict(sounds or {})  # sound file -> seconds, for callee contexts run on Local ;2 legs
        self.faults = Faults()
        self.faults.configure(self.plan.faults)
        self.record = Record()
        self.channels: dict[str, Channel] = {}  # live channels by name
        self.started_at = self.clock.now() - 170  # "Uptime" as on the capture rig
        self._seq = itertools.count(0)
        self._dials: dict[str, int] = {}  # number -> originates so far (which calls go response-first)
        self._uid = itertools.count(1)
        self._uid_base = int(time.time())
        self._tasks: set[asyncio.Task] = set()
        self.ami = AmiServer(self)
        self.faults._server = self.ami
        self.queues: Any = None
        if queues:
            import dataclasses

            from agi.sim.queues import QueueSystem

            if isinstance(queues, Mapping):
                configs = [c if c.name == n else dataclasses.replace(c, name=n) for n, c in queues.items()]
            else:
                configs = list(queues)
            self.queues = QueueSystem(configs, rng_seed=queue_seed, clock=self.clock,
                                      agent_line_factory=self._agent_line,
                                      member_channel_factory=self._member_channel, dialplan=self.dialplan)
        self._running = False

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> "Simulator":
        self.ami_port = await self.ami.start(self.ami_host, self.ami_port)
        self._running = True
        return self

    async def stop(self) -> None:
        self._running = False
        await self.ami.stop()
        tasks = [t for t in self._tasks if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def __aenter__(self) -> "Simulator":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def idle(self) -> bool:
        """No call (and no channel) is in progress."""
        return not any(not t.done() for t in self._tasks)

    async def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait (wall clock) until no call is in progress; True if that happened."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle:
                return True
            await asyncio.sleep(0.01)
        return False

    # ---- event plumbing ----------------------------------------------------------------------
    def publish(self, event: str, fields: Fields) -> None:
        """Every channel's events come here and go to the AMI sessions that want events."""
        self.ami.broadcast(event, [("Privilege", privilege(event))] + fields)

    def event_tv(self) -> str:
        t = datetime.fromtimestamp(self.clock.now(), timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"

    def new_uniqueid(self) -> str:
        """A Uniqueid for a channel without a ChannelId: '<epoch>.<n>' as Asterisk makes them."""
        return f"{self._uid_base}.{next(self._uid)}"

    def new_channel(self, name_prefix: str, *, linkedid: str | None = None, uniqueid: str | None = None,
                    context: str = "default", exten: str = "s", priority: int = 1, state: int = DOWN,
                    record: CallRecord | None = None, callee: Any = None, announce: bool = True,
                    sink: Any = None) -> Channel:
        """Create a channel named ``<name_prefix>-<seq>`` (the queue side makes agent legs with it)."""
        seq = next(self._seq)
        uid = uniqueid or self.new_uniqueid()
        chan = Channel(name=f"{name_prefix}-{seq:08x}", uniqueid=uid, linkedid=linkedid or uid, clock=self.clock,
                       sink=sink or self.publish, context=context, exten=exten, priority=priority, state=state,
                       callee=callee, record=record, faults=self.faults)
        self.register(chan)
        if announce:
            chan.emit("Newchannel")
        return chan

    def register(self, chan: Channel) -> None:
        self.channels[chan.name] = chan

        async def gone() -> None:
            await chan.hungup.wait()
            self.channels.pop(chan.name, None)

        self._spawn(gone())

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- Originate -----------------------------------------------------------------------------
    async def ami_originate(self, session: Session, msg: Message) -> None:
        dial = (msg.get("Channel") or "").strip()
        if not dial:
            session.respond(msg, "Error", message="Channel not specified")
            return
        if not msg.get("Exten") and not msg.get("Application"):
            session.respond(msg, "Error", message="Exten not specified")
            return
        is_async = (msg.get("Async") or "").strip().lower() in ("true", "yes", "1", "on")
        try:
            timeout_ms = int(msg.get("Timeout") or DEFAULT_TIMEOUT_MS)
            priority = int(msg.get("Priority") or 1)
        except ValueError:
            session.respond(msg, "Error", message="Invalid timeout")
            return
        variables: list[tuple[str, str]] = []
        for header in msg.getall("Variable"):
            for part in header.split(","):
                k, sep, v = part.partition("=")
                if sep:
                    variables.append((k.strip(), v))
        name, num = parse_callerid(msg.get("CallerID") or "")
        call = _Call(
            sim=self, dial=dial, action_id=msg.get("ActionID"), channel_id=msg.get("ChannelId") or "",
            other_id=msg.get("OtherChannelId") or "", context=msg.get("Context") or "default",
            exten=msg.get("Exten") or "s", priority=priority, timeout=timeout_ms / 1000.0,
            cid_name=name, cid_num=num, variables=variables,
        )
        call.prepare()
        if is_async:
            session.respond(msg, "Success", message="Originate successfully queued")
            self._spawn(call.run())
        else:  # synchronous Originate: the reply waits for the outcome
            self._spawn(call.run())
            await call.decided.wait()
            if call.reason == REASON_ANSWERED:
                session.respond(msg, "Success", message="Originate successfully queued")
            else:
                session.respond(msg, "Error", message="Originate failed")

    # ---- other actions -------------------------------------------------------------------------
    def ami_core_show_channels(self, session: Session, msg: Message) -> None:
        aid = msg.get("ActionID")
        head = [("ActionID", aid)] if aid is not None else []
        session.respond(msg, "Success", ("EventList", "start"), message="Channels will follow")
        chans = [c for c in self.channels.values() if c.up]
        for c in chans:
            fields = head + c.header() + [("Application", c.application), ("ApplicationData", c.appdata),
                                          ("Duration", c.duration()), ("BridgeId", c.bridge_id)]
            session.event("CoreShowChannel", fields)
        session.event("CoreShowChannelsComplete", head + [("EventList", "Complete"), ("ListItems", str(len(chans)))])

    def ami_queue_summary(self, session: Session, msg: Message) -> None:
        aid = msg.get("ActionID")
        tail = [("ActionID", aid)] if aid is not None else []
        session.respond(msg, "Success", ("EventList", "start"), message="Queue summary will follow")
        rows = self.queues.summary(msg.get("Queue")) if self.queues is not None else []
        for row in rows:
            session.event("QueueSummary", [(k, str(v)) for k, v in row.items()] + tail)
        session.event("QueueSummaryComplete", tail + [("EventList", "Complete"), ("ListItems", str(len(rows)))])

    def ami_queue_status(self, session: Session, msg: Message) -> None:
        aid = msg.get("ActionID")
        tail = [("ActionID", aid)] if aid is not None else []
        session.respond(msg, "Success", ("EventList", "start"), message="Queue status will follow")
        items = self.queues.status(msg.get("Queue")) if self.queues is not None else []
        for event, row in items:
            session.event(event, [(k, str(v)) for k, v in row.items()] + tail)
        session.event("QueueStatusComplete", tail + [("EventList", "Complete"), ("ListItems", str(len(items)))])

    def ami_queue_pause(self, session: Session, msg: Message) -> None:
        interface = msg.get("Interface") or ""
        if not interface:
            session.respond(msg, "Error", message="Need 'Interface' parameter.")
            return
        paused = (msg.get("Paused") or "").strip().lower() in ("true", "yes", "1", "on")
        ok = self.queues is not None and self.queues.pause(interface, paused, queue=msg.get("Queue"),
                                                           reason=msg.get("Reason") or "")
        if not ok:
            session.respond(msg, "Error", message="Interface not found")
        else:
            session.respond(msg, "Success",
                            message="Interface paused successfully" if paused else "Interface unpaused successfully")

    def ami_hangup(self, session: Session, msg: Message) -> None:
        name = msg.get("Channel") or ""
        chan = self.channels.get(name)
        if chan is None:
            session.respond(msg, "Error", message="No such channel")
            return
        try:
            cause = int(msg.get("Cause") or 16)
        except ValueError:
            cause = 16
        chan.request_hangup(cause)
        session.respond(msg, "Success", message="Channel Hungup")

    def ami_getvar(self, session: Session, msg: Message) -> None:
        chan = self.channels.get(msg.get("Channel") or "")
        var = msg.get("Variable") or ""
        value = chan.variables.get(var, "") if chan else ""
        session.respond(msg, "Success", ("Variable", var), ("Value", value))

    @staticmethod
    def _inherit(parent: Any, child: Channel) -> None:
        """``__X`` variables go to every channel the parent creates (``_X`` only one level down)."""
        inherit_variables(parent, child)

    def _member_channel(self, caller: Any, member: Any) -> Channel:
        """The leg Queue() rings for ``member``: a Local pair (``;1`` returned, ``.peer`` = ``;2``) set
        up as in the queue traces, or one channel for other technologies (PJSIP/agent1-0000000a)."""
        iface = member.interface
        linkedid = getattr(caller, "linkedid", caller.uniqueid)
        if not iface.startswith("Local/"):
            chan = self.new_channel(iface, linkedid=linkedid, context="default", exten="s", record=None)
            self._inherit(caller, chan)
            chan.callerid_num, chan.callerid_name = caller.callerid_num, caller.callerid_name
            chan.connected_num, chan.connected_name = caller.callerid_num, caller.callerid_name
            chan.peer = None
            return chan
        target, _, opts = iface[len("Local/"):].partition("/")
        lexten, _, lctx = target.partition("@")
        seq = next(self._seq)
        one = Channel(name=f"Local/{target}-{seq:08x};1", uniqueid=self.new_uniqueid(), linkedid=linkedid,
                      clock=self.clock, sink=self.publish, context=lctx, exten=lexten, state=DOWN)
        two = Channel(name=f"Local/{target}-{seq:08x};2", uniqueid=self.new_uniqueid(), linkedid=linkedid,
                      clock=self.clock, sink=self.publish, context=lctx, exten=lexten, state=RING)
        for chan in (one, two):
            self.register(chan)
            chan.emit("Newchannel")
            self._inherit(caller, chan)
        one.peer, two.peer = two, one
        one.callerid_num, one.callerid_name = caller.callerid_num, caller.callerid_name
        one.newexten("AppQueue", "(Outgoing Line)")
        one.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        dialed = iface[len("Local/"):]
        one.set_var("DIALEDPEERNUMBER", dialed)
        two.set_var("DIALEDPEERNUMBER", dialed)
        two.callerid_num, two.callerid_name = caller.callerid_num, caller.callerid_name
        two.connected_num, two.connected_name = caller.callerid_num, caller.callerid_name
        two.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        two.emit("NewConnectedLine")
        self.publish("LocalBridge", one.header("LocalOne") + two.header("LocalTwo") + [
            ("Context", lctx), ("Exten", lexten), ("LocalOptimization", "No" if "n" in opts else "Yes")])
        one.connected_num, one.connected_name = caller.callerid_num, caller.callerid_name
        if self.dialplan.has(lctx, lexten):
            # the member's ;2 half runs its extension; the capture rig picks the agent's behaviour with
            # a global <EXTEN>_MODE (AGENT1_MODE=answer|noanswer), here from Member.answers
            one.far_leg = two
            one.dialplan_answered = asyncio.Event()  # type: ignore[attr-defined]
            far = getattr(caller, "far_leg", None)
            runner = _MemberRunner(self.dialplan, scenario=Scenario("agent"), near=one, sounds=self.sounds,
                                   answered=one.dialplan_answered,  # type: ignore[attr-defined]
                                   media_wait=0.0 if far is not None and far.playing else CALLEE_ANSWER_DELAY,
                                   caller=caller)
            runner.defaults[f"{lexten.upper()}_MODE"] = (getattr(member, "mode", "")
                                                         or ("answer" if member.answers else "noanswer"))
            one.leg_task = self._spawn(runner.run_steps(two, lctx, lexten, 1))  # type: ignore[attr-defined]
            return one
        if member.answers:  # the rig's [agents] extensions: agent1-answer (Answer, Playback), agent1-noanswer
            two.state, two.exten, two.priority = UP, f"{lexten}-answer", 3
        else:
            two.exten, two.priority = f"{lexten}-noanswer", 2
        return one

    def _agent_line(self, caller: Any, member: Any, callee: Any) -> Channel:
        """The member's leg for the Queue F() wrap-up: a real channel with the caller's inherited vars."""
        iface = member.interface
        prefix = iface[:-2] if iface.endswith("/n") else iface
        chan = self.new_channel(prefix, linkedid=getattr(caller, "linkedid", caller.uniqueid), context="dialer-wrapup",
                                exten="s", state=UP, callee=callee, record=getattr(caller, "record", None),
                                announce=False)
        if prefix.startswith("Local/"):
            self.channels.pop(chan.name, None)
            chan.name += ";1"
            self.channels[chan.name] = chan
        chan.emit("Newchannel")
        self._inherit(caller, chan)
        chan.callerid_num, chan.callerid_name = caller.callerid_num, caller.callerid_name
        chan.connected_num, chan.connected_name = caller.callerid_num, caller.callerid_name
        chan.answered_at = self.clock.now()
        chan.finish_on_hangup = True
        return chan

    # ---- EXEC Dial from an AGI session ---------------------------------------------------------------
    async def exec_dial(self, s: Any, data: str) -> int | None:
        """``EXEC Dial Local/<exten>@<context>[/n],<timeout>`` as ami-originate-human*.txt show it: the
        Local pair with its events, the pair's ;2 half running that extension of the dialplan, a basic
        bridge while both are up. None (not handled here) for other destinations."""
        from agi.sim.agi_client import set_var

        caller = s.line
        parts = (data.split(",") + ["", ""])[:3]
        dest, timeout_arg = parts[0].strip(), parts[1].strip()
        if not dest.startswith("Local/") or "&" in dest or not isinstance(caller, Channel):
            return None
        target, _, opts = dest[len("Local/"):].partition("/")
        lexten, _, lctx = target.partition("@")
        if not self.dialplan.has(lctx or "default", lexten):
            return None
        lctx = lctx or "default"
        for name in ("DIALSTATUS", "DIALEDPEERNUMBER", "DIALEDPEERNAME", "ANSWEREDTIME", "ANSWEREDTIME_MS",
                     "DIALEDTIME", "DIALEDTIME_MS", "RINGTIME", "RINGTIME_MS", "PROGRESSTIME", "PROGRESSTIME_MS"):
            set_var(caller, name, "")
        seq = next(self._seq)
        one = Channel(name=f"Local/{target}-{seq:08x};1", uniqueid=self.new_uniqueid(), linkedid=caller.linkedid,
                      clock=self.clock, sink=self.publish, context=lctx, exten=lexten, state=DOWN)
        two = Channel(name=f"Local/{target}-{seq:08x};2", uniqueid=self.new_uniqueid(), linkedid=caller.linkedid,
                      clock=self.clock, sink=self.publish, context=lctx, exten=lexten, state=RING)
        for chan in (one, two):
            self.register(chan)
            chan.emit("Newchannel")
            self._inherit(caller, chan)
        one.far_leg = two
        one.set_var("DIALEDPEERNUMBER", target)
        # app_dial: the outgoing channel's caller id is the caller's exten, its connected line the caller
        one.callerid_num, one.callerid_name = caller.exten, caller.callerid_name
        one.connected_num, one.connected_name = caller.callerid_num, caller.callerid_name
        one.newexten("AppDial", "(Outgoing Line)", exten="s")
        one.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        one.emit("NewConnectedLine")
        two.set_var("DIALEDPEERNUMBER", target)
        two.callerid_num, two.callerid_name = caller.callerid_num, caller.callerid_name
        two.connected_num, two.connected_name = caller.exten, caller.callerid_name
        two.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        two.emit("NewConnectedLine")
        self.publish("LocalBridge", one.header("LocalOne") + two.header("LocalTwo") + [
            ("Context", lctx), ("Exten", lexten), ("LocalOptimization", "No" if "n" in opts else "Yes")])
        caller.emit("DialBegin", one.header("Dest") + [("DialString", target)])
        answered = asyncio.Event()
        # Answer() on the ;2 half waits for the first voice frame from the caller's side, at most
        # 0.5 s (main/channel.c __ast_answer): at once while the person's leg is playing audio
        far = caller.far_leg
        media_wait = 0.0 if far is not None and far.playing else CALLEE_ANSWER_DELAY
        runner = _DialedRunner(self.dialplan, scenario=Scenario("agent"), near=one, sounds=self.sounds,
                               answered=answered, media_wait=media_wait, caller=caller)
        leg = self._spawn(runner.run_steps(two, lctx, lexten, 1))
        timeout = float(timeout_arg) if timeout_arg else 0.0
        waits = [asyncio.ensure_future(answered.wait()), asyncio.ensure_future(caller.hangup_requested.wait()),
                 asyncio.ensure_future(one.hangup_requested.wait())]
        await asyncio.wait(waits, timeout=self.clock.real(timeout) if timeout > 0 else None,
                           return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        if not answered.is_set() or caller.hangup_requested.is_set():
            status = "CANCEL" if caller.hangup_requested.is_set() else "NOANSWER"
            caller.emit("DialEnd", one.header("Dest") + [("DialStatus", status)])
            leg.cancel()
            if two.up:
                two.emit("SoftHangupRequest", [("Cause", "16")])
                two.finish(0)
            one.finish(0)
            set_var(caller, "DIALSTATUS", status)
            return -1
        one.newstate(UP)
        one.exten = ""  # app_dial's answered snapshot of the outgoing channel has no exten (traces)
        set_var(caller, "DIALSTATUS", "ANSWER")
        set_var(caller, "DIALEDPEERNAME", one.name)
        set_var(caller, "DIALEDPEERNUMBER", target)
        caller.emit("DialEnd", one.header("Dest") + [("DialStatus", "ANSWER")])
        bridge = Bridge(str(uuid.uuid4()), self.publish)
        bridge.create()
        one.newexten("AppDial", "(Outgoing Line)", exten="")
        bridge.enter(one)
        bridge.enter(caller)
        one.set_var("BRIDGEPEER", caller.name)
        caller.set_var("BRIDGEPEER", one.name)
        waits = [asyncio.ensure_future(caller.hangup_requested.wait()),
                 asyncio.ensure_future(one.hangup_requested.wait())]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for w in waits:
            w.cancel()
        caller_first = caller.hangup_requested.is_set() and not one.hangup_requested.is_set()
        if caller_first:
            one.request_hangup(16, soft=True)
        one.set_var("BRIDGEPEER", "")
        caller.set_var("BRIDGEPEER", "")
        bridge.leave(one)
        one.finish(16)
        bridge.leave(caller)
        bridge.destroy()
        leg.cancel()
        up_ms = int((self.clock.now() - (caller.answered_at or self.clock.now())) * 1000)
        for name in ("ANSWEREDTIME", "DIALEDTIME"):
            set_var(caller, name, str(up_ms // 1000))
            set_var(caller, name + "_MS", str(up_ms))
        set_var(caller, "DIALSTATUS", "ANSWER")
        if not caller_first and not caller.hangupcause:
            caller.hangupcause = 16  # the called party's normal clearing becomes our HANGUPCAUSE
        return -1

    # ---- AGI() ---------------------------------------------------------------------------------
    async def run_agi(self, chan: Channel, url: str, args: list[str]) -> Any:
        from agi.sim.agi_client import run_agi

        host, script, port, _ = agi_args_of(url)
        if self.agi_connect is not None:
            host, port = self.agi_connect
        exit_on_hangup = chan.variables.get("AGIEXITONHANGUP", "").lower() in ("yes", "true", "1")
        result = await run_agi(
            chan, host, port, script, args, context=chan.context, extension=chan.exten, priority=chan.priority,
            faults=self.faults, exit_on_hangup=exit_on_hangup, queues=self.queues,
            server_timeout=self.agi_server_timeout, request=url.split(",")[0], switch=self,
        )
        rec = chan.record
        if rec is not None:
            rec.agi_scripts.append(script)
            rec.keys.extend(result.keys)
            if result.agent:
                rec.bridged_to = result.agent
            if result.queue_status is not None:
                rec.queue_status = result.queue_status
            if result.error:
                rec.notes.append(result.error)
        return result


class _Call:
    """One Originate: the channel(s), the network outcome, then the dialplan on answer."""

    def __init__(self, *, sim: Simulator, dial: str, action_id: str | None, channel_id: str, other_id: str,
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
            self.sim._spawn(self._release())
        if self.rec is not None:
            self.rec.reason = reason
            self.rec.response = "Success" if success else "Failure"
        self.decided.set()

    def prepare(self) -> None:
        """Choose the scenario and enter the call in the record, before the Originate is answered,
        so a test reading the record after "Originate successfully queued" always finds it."""
        sim = self.sim
        try:
            scenario = sim.plan.choose(self.number)
        except LookupError as e:
            scenario = Scenario(name="no_channel", network=Network.NO_CHANNEL)
            note = str(e)
        else:
            note = ""
        if self.tech not in KNOWN_TECHS:
            scenario = scenario.with_(network=Network.NO_CHANNEL, name="no_channel")
        self.scenario = scenario
        nth = sim._dials.get(self.number, 0)
        sim._dials[self.number] = nth + 1
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
                await self.run_local(scenario)
            else:
                await self.run_trunk(scenario)
        finally:
            sim.record.line_down()
            self.rec.ended_at = sim.clock.now()
            if not self.decided.is_set():
                self.decided.set()
                self._flush()  # no response was sent (cancelled): nothing is held back for ever

    # ---- channel set-up ----------------------------------------------------------------------
    def _setup_vars(self, chan: Channel, reverse: bool) -> None:
        for k, v in (reversed(self.variables) if reverse else self.variables):
            chan.set_var(k, v)

    def _set_callerid(self, chan: Channel, *, both: bool = False) -> None:
        """NewCallerid + NewConnectedLine; the ;2 half of a Local pair gets both at once (traces)."""
        if not (self.cid_num or self.cid_name):
            return
        chan.callerid_num, chan.callerid_name = self.cid_num, self.cid_name
        if both:
            chan.connected_num, chan.connected_name = self.cid_num, self.cid_name
        chan.emit("NewCallerid", [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")])
        chan.connected_num, chan.connected_name = self.cid_num, self.cid_name
        chan.emit("NewConnectedLine")

    def _dial_begin(self, dest: Channel, dialstring: str) -> None:
        dest_fields = dest.header("Dest")
        self.publish("DialBegin", dest_fields + [("DialString", dialstring)])
        if dest.record is not None:
            dest.record.on_event(dest, "DialBegin", [("DialString", dialstring)])

    def _dial_state(self, dest: Channel, event: str, status: str) -> None:
        self.publish(event, dest.header("Dest") + [("DialStatus", status)])

    def _far_goto(self, two: Channel, lctx: str) -> None:
        """The far end's extension jumps first (``Goto(busy,1)``): the ;2 half's later events show
        where it went, as in the response-first traces (Exten +1404... -> busy)."""
        step = self.sim.dialplan.find(lctx, two.exten, two.priority)
        if step is None or step.app != "Goto":
            return
        parts = [p.strip() for p in step.args.split(",")]
        if len(parts) > 2 and parts[0] != lctx:
            return  # another context: not the far end's own plan
        exten, prio = (parts[-2], parts[-1]) if len(parts) >= 2 else (two.exten, parts[0])
        two.newexten("Goto", step.args)
        two.exten, two.priority = exten, int(prio) if prio.isdigit() else 1

    async def _ring(self, scenario: Scenario) -> bool:
        """Ring for the scenario's ring time; False when the Originate Timeout ran out first."""
        ring = scenario.ring_time if scenario.network is not Network.NO_ANSWER else float("inf")
        if ring >= self.timeout:
            await self.sim.clock.sleep(self.timeout)
            return False
        await self.sim.clock.sleep(ring)
        return True

    # ---- Local/<exten>@<context>: two legs, as in the traces -------------------------------------
    async def run_local(self, sc: Scenario) -> None:
        sim = self.sim
        target, _, opts = self.resource.partition("/")
        lexten, _, lctx = target.partition("@")
        lctx = lctx or "default"
        prefix = f"Local/{target}"
        seq = next(sim._seq)
        one = Channel(name=f"{prefix}-{seq:08x};1", uniqueid=self.channel_id, linkedid=self.channel_id,
                      clock=sim.clock, sink=self.publish, context=lctx, exten=lexten, state=DOWN,
                      callee=sc.callee, record=self.rec, faults=sim.faults)
        two = Channel(name=f"{prefix}-{seq:08x};2", uniqueid=self.other_id or self.channel_id + ";2",
                      linkedid=self.channel_id, clock=sim.clock, sink=self.publish, context=lctx, exten=lexten,
                      state=RING, callee=sc.callee, record=self.rec, faults=sim.faults)
        self.rec.channel = one.name  # type: ignore[union-attr]
        sim.register(one)
        sim.register(two)
        one.emit("Newchannel")
        two.emit("Newchannel")
        one.newexten("AppDial2", "(Outgoing Line)")
        self._setup_vars(one, reverse=True)
        self._set_callerid(one)
        if sc.network is Network.NO_EXTEN:
            # no such extension: the pair is torn down before any dial (trace h2)
            self.originate_response(False, REASON_FAILURE, self.dial)
            self._setup_vars(two, reverse=False)
            self._set_callerid(two, both=True)
            two.finish(0)
            one.finish(0)
            return
        self._setup_vars(two, reverse=False)
        self._set_callerid(two, both=True)
        self.publish("LocalBridge", one.header("LocalOne") + two.header("LocalTwo") + [
            ("Context", lctx), ("Exten", lexten), ("LocalOptimization", "No" if "n" in opts else "Yes")])
        net = sc.network
        if net is not Network.ANSWER:
            self._far_goto(two, lctx)
        if net is Network.NO_ANSWER or sc.ring_time > 0:
            if net is Network.NO_ANSWER:
                two.newexten("Ringing", "", priority=1)
                one.newstate(RINGING)
                self._dial_begin(one, target)
                two.newexten("Wait", "60", priority=2)
            else:
                self._dial_begin(one, target)
                two.newexten("Ringing", "", priority=1)
                one.newstate(RINGING)
            self._dial_state(one, "DialState", "RINGING")
            rang = await self._ring(sc)
            if not rang:
                two.request_hangup(19)
                self.originate_response(False, REASON_RING_TIMEOUT, self.dial)
                two.emit("SoftHangupRequest", [("Cause", "16")])
                two.finish(19)
                one.finish(19)
                return
            dialed = True
        else:
            dialed = False
            # response first (the box is loaded): the ;2 half's Hangup(<cause>) beats the originate
            # thread's DialBegin (ami-originate-rejected-response-first.txt)
            far_first = self.response_first and net in HANGUP_CAUSES
            if net is not Network.CONGESTION and not far_first:
                self._dial_begin(one, target)
                dialed = True
        if net is Network.BUSY and self.response_first:  # ami-originate-busy-response-first.txt
            # the originate thread wins the race with Busy(): it takes the BUSY indication, ends the
            # dial and hangs up ;1 before Busy() sets the ;2 half's state
            two.newexten("Busy", "")
            self._dial_state(one, "DialEnd", "BUSY")
            self.originate_response(False, REASON_BUSY, self.dial)
            two.emit("HangupRequest", [("Cause", "0")])
            one.finish(0)
            two.newstate(BUSY)
            two.emit("SoftHangupRequest", [("Cause", "16")])
            two.finish(FAILURE_CAUSE[net])
            return
        if net is Network.BUSY:  # ami-originate-busy.txt, event for event
            two.newexten("Busy", "")
            two.newstate(BUSY)
            self._dial_state(one, "DialEnd", "BUSY")
            two.emit("HangupRequest", [("Cause", "0")])
            two.emit("SoftHangupRequest", [("Cause", "16")])
            self.originate_response(False, REASON_BUSY, self.dial)
            two.finish(FAILURE_CAUSE[net])
            one.finish(0)
            return
        if net is Network.CONGESTION:  # ami-originate-congestion.txt, event for event
            two.newexten("Congestion", "")
            two.newstate(BUSY)
            self.originate_response(False, REASON_CONGESTION, self.dial)
            if not dialed:
                self._dial_begin(one, target)
            self._dial_state(one, "DialEnd", "CONGESTION")
            two.emit("HangupRequest", [("Cause", "0")])
            one.finish(0)
            two.emit("SoftHangupRequest", [("Cause", "16")])
            two.finish(FAILURE_CAUSE[net])
            return
        if net in HANGUP_CAUSES:
            cause = FAILURE_CAUSE[net]
            two.newexten("Hangup", str(cause))
            two.emit("SoftHangupRequest", [("Cause", "16")])
            one.emit("HangupRequest", [("Cause", str(cause))])
            two.finish(cause)
            if not dialed:
                self._dial_begin(one, target)
            self._dial_state(one, "DialEnd", "NOANSWER")
            self.originate_response(False, REASON_FAILURE, self.dial)
            one.finish(cause)
            return
        # answered
        two.newexten("Answer", "")
        two.newstate(UP)
        self.originate_response(True, REASON_ANSWERED, one.name)
        one.newstate(UP)
        self._dial_state(one, "DialEnd", "ANSWER")
        one.answered_at = two.answered_at = sim.clock.now()
        self.rec.answered_at = one.answered_at  # type: ignore[union-attr]
        one.far_leg = two
        far = sim._spawn(self._far_leg_audio(one, two, sc, lctx, lexten))
        await self._run_dialplan(one, sc)
        far.cancel()
        if two.up:
            two.emit("HangupRequest", [("Cause", str(one.hangupcause))])
            one.finish()
            if two.playing:
                two.playing = False
                two.set_var("PLAYBACKSTATUS", "SUCCESS")
            two.emit("SoftHangupRequest", [("Cause", "16")])
            two.finish(one.hangupcause)
        else:
            one.finish()

    async def _far_leg_audio(self, one: Channel, two: Channel, sc: Scenario, lctx: str, lexten: str) -> None:
        """What the far end's half of the pair does after Answer: the callee context when the
        dialplan has it (capture rig), else the scenario's media played until someone hangs up."""
        sim = self.sim
        try:
            await two.clock.sleep(CALLEE_ANSWER_DELAY)
            if not two.up or two.hangup_requested.is_set():
                return
            if sim.dialplan.has(lctx, lexten):
                runner = CalleeRunner(sim.dialplan, scenario=sc, near=one, sounds=sim.sounds)
                await runner.run_steps(two, lctx, lexten, 2)
            elif sc.media:
                two.newexten("Playback", sc.media, priority=2)
                two.playing = True
        except asyncio.CancelledError:
            return

    # ---- PJSIP/<number>@<trunk> and other techs: one channel -----------------------------------
    async def run_trunk(self, sc: Scenario) -> None:
        sim = self.sim
        endpoint = endpoint_of(self.resource)
        chan = sim.new_channel(f"{self.tech}/{endpoint}", uniqueid=self.channel_id, linkedid=self.channel_id,
                               context=self.context, exten=self.exten, priority=self.priority, state=DOWN,
                               record=self.rec, callee=sc.callee, sink=self.publish)
        self.rec.channel = chan.name  # type: ignore[union-attr]
        self._setup_vars(chan, reverse=True)
        self._set_callerid(chan)
        net = sc.network
        if net is Network.NO_EXTEN:
            self.originate_response(False, REASON_FAILURE, self.dial)
            chan.finish(0)
            return
        self._dial_begin(chan, self.resource)
        chan.newstate(RINGING)
        self._dial_state(chan, "DialState", "RINGING")
        if not await self._ring(sc):
            chan.emit("HangupRequest", [("Cause", "19")])
            self._dial_state(chan, "DialEnd", "NOANSWER")
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
            self._dial_state(chan, "DialEnd", status)
            self.originate_response(False, reason, self.dial)
            chan.finish(cause)
            return
        chan.newstate(UP)
        self._dial_state(chan, "DialEnd", "ANSWER")
        self.originate_response(True, REASON_ANSWERED, chan.name)
        chan.answered_at = sim.clock.now()
        self.rec.answered_at = chan.answered_at  # type: ignore[union-attr]
        await self._run_dialplan(chan, sc)
        chan.finish()

    async def _run_dialplan(self, chan: Channel, sc: Scenario) -> None:
        sim = self.sim
        runner = DialplanRunner(sim.dialplan, scenario=sc, agi=sim.run_agi,
                                defaults={"DIALER_AGI": f"{sim.agi_host}:{sim.agi_port}"})
        from agi.sim.callee import far_end

        far_end(chan)  # schedules the person's own hang-up (Callee.hangup_after)
        if not sim.dialplan.find(self.context, self.exten, self.priority):
            chan.hangup(16)
        try:
            await runner.run(chan, self.context, self.exten, self.priority)
        finally:
            far_end(chan).cancel()


class _DialedRunner(CalleeRunner):
    """The ;2 half of a Local pair that EXEC Dial rang: its Answer() tells the Dial (after waiting
    ``media_wait`` for media from the caller's side, as __ast_answer does)."""

    def __init__(self, *args: Any, answered: asyncio.Event, media_wait: float, caller: Any = None,
                 **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.answered = answered
        self.media_wait = media_wait
        self.caller = caller

    async def app_ringing(self, chan: Channel, args: str) -> None:
        """The dialed party rings: the outgoing ;1 half goes Ringing, app_dial reports DialState."""
        self.near.newstate(RINGING)
        if self.caller is not None:
            self.caller.emit("DialState", self.near.header("Dest") + [("DialStatus", "RINGING")])

    async def app_answer(self, chan: Channel, args: str) -> None:
        chan.newstate(UP)
        chan.answered_at = chan.clock.now()
        self.answered.set()
        if self.media_wait > 0:
            await wait_or_hangup(chan, self.media_wait)


class _MemberRunner(_DialedRunner):
    """The ;2 half of a queue member's Local pair: Ringing() and Answer() there show on the ;1 half
    (Newstate, AppQueue, NewConnectedLine) and on the caller (DialState RINGING), as the queue traces."""

    def _near_state(self, state: int) -> None:
        near = self.near
        near.exten = "s"
        near.connected_num, near.connected_name = self.caller.callerid_num, self.caller.callerid_name
        near.newstate(state)
        near.newexten("AppQueue", "(Outgoing Line)")
        near.emit("NewConnectedLine")

    async def app_ringing(self, chan: Channel, args: str) -> None:
        self._near_state(RINGING)
        self.caller.emit("DialState", self.near.header("Dest") + [("DialStatus", "RINGING")])

    async def app_answer(self, chan: Channel, args: str) -> None:
        chan.newstate(UP)
        chan.answered_at = chan.clock.now()
        self._near_state(UP)
        self.answered.set()
        if self.media_wait > 0:
            await wait_or_hangup(chan, self.media_wait)
