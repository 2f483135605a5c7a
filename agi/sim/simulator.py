"""The Asterisk simulator: AMI server + simulated network + emulated dialplan + FastAGI client.

    sim = Simulator(agi_host="127.0.0.1", agi_port=4573, speed=100.0, plan=ScenarioPlan.mix(seed=1))
    await sim.start()          # sim.ami_port is the bound port
    ...                        # sim.record, sim.faults
    await sim.stop()

This module holds the simulator's state and its AMI actions; the rooms it runs: one Originate
(agi.sim.originate, agi.sim.local_call), the dialplan (agi.sim.pbx), AGI() (agi.sim.agi_client),
the channels applications ask for (agi.sim.switch), the queues (agi.sim.queues).
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from datetime import datetime, timezone
from typing import Any, Mapping

from agi.rules.classify import REASON_ANSWERED
from agi.sim.agent_phone import PHONE_SCENARIO, Phone, run_phone
from agi.sim.agi_client import run_agi
from agi.sim.ami_server import AmiServer, Message, Session
from agi.sim.channels import DOWN, Channel, Fields, privilege
from agi.sim.clock import Clock
from agi.sim.dialplan import PROJECT_DIALPLAN, Dialplan, agi_args_of
from agi.sim.faults import Faults
from agi.sim.originate import DEFAULT_TIMEOUT_MS, Call, parse_callerid
from agi.sim.queues import QueueSystem
from agi.sim.record import CallRecord, Record
from agi.sim.scenarios import ScenarioPlan
from agi.sim.switch import Switch


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
        self.dials: dict[str, int] = {}  # number -> originates so far (which calls go response-first)
        self._uid = itertools.count(1)
        self._uid_base = int(time.time())
        self._tasks: set[asyncio.Task] = set()
        self.ami = AmiServer(self)
        self.faults._server = self.ami
        self.switch = Switch(self)
        self.queues: Any = None
        if queues:
            if isinstance(queues, Mapping):
                configs = [c if c.name == n else dataclasses.replace(c, name=n) for n, c in queues.items()]
            else:
                configs = list(queues)
            self.queues = QueueSystem(configs, rng_seed=queue_seed, clock=self.clock,
                                      agent_line_factory=self.switch.agent_line,
                                      member_channel_factory=self.switch.member_channel, dialplan=self.dialplan)
        self.phones: dict[str, Phone] = {}  # agents' devices an Originate rings (preview mode)
        self._running = False

    def add_phone(self, interface: str, **behaviour: Any) -> Phone:
        """An agent's phone: answers an Originate to ``interface`` (agi.sim.agent_phone.Phone)."""
        phone = self.phones[interface] = Phone(interface, **behaviour)
        return phone

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
        seq = self.next_seq()
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

        self.spawn(gone())

    def next_seq(self) -> int:
        """The next channel sequence number (the hex suffix of channel names)."""
        return next(self._seq)

    def spawn(self, coro: Any) -> asyncio.Task:
        """Run ``coro`` as one of the simulator's tasks (cancelled by ``stop``)."""
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
        call = Call(
            sim=self, dial=dial, action_id=msg.get("ActionID"), channel_id=msg.get("ChannelId") or "",
            other_id=msg.get("OtherChannelId") or "", context=msg.get("Context") or "default",
            exten=msg.get("Exten") or "s", priority=priority, timeout=timeout_ms / 1000.0,
            cid_name=name, cid_num=num, variables=variables,
        )
        phone = self.phones.get(dial)
        call.prepare(PHONE_SCENARIO if phone is not None else None)
        work = run_phone(call, phone) if phone is not None else call.run()
        if is_async:
            session.respond(msg, "Success", message="Originate successfully queued")
            self.spawn(work)
        else:  # synchronous Originate: the reply waits for the outcome
            self.spawn(work)
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

    def ami_queue_add(self, session: Session, msg: Message) -> None:
        """QueueAdd (app_queue.c manager_add_queue_member): a dynamic member, paused or not."""
        queue, interface = msg.get("Queue") or "", msg.get("Interface") or ""
        if not queue or not interface:
            session.respond(msg, "Error", message="'Queue' and 'Interface' not specified.")
            return
        paused = (msg.get("Paused") or "").strip().lower() in ("true", "yes", "1", "on")
        outcome = "noqueue" if self.queues is None else self.queues.add_member(
            queue, interface, msg.get("MemberName") or "", paused=paused, reason=msg.get("Reason") or "")
        if outcome == "added":
            session.respond(msg, "Success", message="Added interface to queue")
        elif outcome == "already":
            session.respond(msg, "Error", message="Unable to add interface: Already there")
        else:
            session.respond(msg, "Error", message="Unable to add interface to queue: No such queue")

    def ami_queue_remove(self, session: Session, msg: Message) -> None:
        """QueueRemove (app_queue.c manager_remove_queue_member)."""
        queue, interface = msg.get("Queue") or "", msg.get("Interface") or ""
        if not queue or not interface:
            session.respond(msg, "Error", message="Need 'Queue' and 'Interface' parameters.")
            return
        outcome = "noqueue" if self.queues is None else self.queues.remove_member(queue, interface)
        if outcome == "removed":
            session.respond(msg, "Success", message="Removed interface from queue")
        elif outcome == "notthere":
            session.respond(msg, "Error", message="Unable to remove interface: Not there")
        else:
            session.respond(msg, "Error", message="Unable to remove interface from queue: No such queue")

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

    # ---- AGI() ---------------------------------------------------------------------------------
    async def run_agi(self, chan: Channel, url: str, args: list[str]) -> Any:
        host, script, port, _ = agi_args_of(url)
        if self.agi_connect is not None:
            host, port = self.agi_connect
        exit_on_hangup = chan.variables.get("AGIEXITONHANGUP", "").lower() in ("yes", "true", "1")
        result = await run_agi(
            chan, host, port, script, args, context=chan.context, extension=chan.exten, priority=chan.priority,
            faults=self.faults, exit_on_hangup=exit_on_hangup, queues=self.queues,
            server_timeout=self.agi_server_timeout, request=url.split(",")[0], switch=self.switch,
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
