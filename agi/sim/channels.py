"""Simulated Asterisk channels: name, Uniqueid/Linkedid, variables, state, and their AMI events.

A ``Channel`` implements ``agi.sim.line.SimLine``; every event it emits carries the standard
channel header fields in the order Asterisk 22 prints them (see tests/traces/).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.clock import Clock
    from agi.sim.record import CallRecord

# Asterisk's enum ast_channel_state (include/asterisk/channelstate.h) and ast_state2str()
DOWN, RSRVD, OFFHOOK, DIALING, RING, RINGING, UP, BUSY = range(8)
STATE_DESC = {
    DOWN: "Down",
    RSRVD: "Rsrvd",
    OFFHOOK: "OffHook",
    DIALING: "Dialing",
    RING: "Ring",
    RINGING: "Ringing",
    UP: "Up",
    BUSY: "Busy",
}

# Q.850 cause texts as Asterisk prints them in Cause-txt (main/causes.c / ast_cause2str)
CAUSE_TEXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    2: "No route to specified transmit network",
    3: "No route to destination",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    22: "Number changed",
    27: "Destination out of order",
    28: "Invalid number format",
    31: "Normal, unspecified",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
    42: "Switching equipment congestion",
    44: "Requested channel not available",
    47: "Resource unavailable, unspecified",
    58: "Bearer capability not available",
    66: "Channel type not implemented",
    88: "Incompatible destination",
}

# AMI class of each event (the Privilege header), as in the traces
PRIVILEGE = {
    "AGIExecStart": "agi,all",
    "AGIExecEnd": "agi,all",
    "AsyncAGIStart": "agi,all",
    "AsyncAGIEnd": "agi,all",
    "FullyBooted": "system,all",
    "SuccessfulAuth": "security,all",
    "InvalidPassword": "security,all",
    "ChallengeResponseFailed": "security,all",
    "Newexten": "dialplan,all",
    "VarSet": "dialplan,all",
    "HangupHandlerPush": "dialplan,all",
    "HangupHandlerRun": "dialplan,all",
    "HangupHandlerPop": "dialplan,all",
    "DTMFBegin": "dtmf,all",
    "DTMFEnd": "dtmf,all",
}
AGENT_EVENTS = ("Agent", "Queue")


def privilege(event: str) -> str:
    if event in PRIVILEGE:
        return PRIVILEGE[event]
    if event.startswith(AGENT_EVENTS):
        return "agent,all"
    return "call,all"


Fields = list[tuple[str, str]]


def cid(value: str | None) -> str:
    return value if value else "<unknown>"


class Channel:
    """One channel (one leg). ``sink(event, fields)`` delivers a finished event to the AMI side."""

    def __init__(
        self,
        *,
        name: str,
        uniqueid: str,
        linkedid: str,
        clock: Clock,
        sink: Callable[[str, Fields], None],
        context: str,
        exten: str,
        priority: int = 1,
        state: int = DOWN,
        callee: Any = None,
        record: CallRecord | None = None,
        faults: Any = None,
    ) -> None:
        self.name = name
        self.uniqueid = uniqueid
        self.linkedid = linkedid
        self.clock = clock
        self._sink = sink
        self.context = context
        self.exten = exten
        self.priority = priority
        self.state = state
        self.callerid_num = ""
        self.callerid_name = ""
        self.connected_num = ""
        self.connected_name = ""
        self.language = "en"
        self.accountcode = ""
        self.variables: dict[str, str] = {}
        self.inheritable: set[str] = set()  # set as __X: copied to every channel created from this one, on and on
        self.inherit_once: set[str] = set()  # set as _X: copied to the channels this one creates only
        self.hungup = asyncio.Event()
        self.hangup_requested = asyncio.Event()  # far end or our side asked for hang-up
        self.hangupcause = 0
        self.callee = callee
        self.record = record
        self.faults = faults
        self.created = clock.now()
        self.answered_at: float | None = None
        self.application = ""  # current app, for CoreShowChannels
        self.appdata = ""
        self.bridge_id = ""
        self.bridge: Bridge | None = None
        self.peer: Channel | None = None  # the other half of a Local pair made for a queue member
        self.far_leg: Channel | None = None  # ;1 of a Local pair: its ;2 half (the far end's side)
        self.faxdetect = False
        self.final_priority: int | None = None  # where the h extension left the channel
        self.playing = False  # a Playback is under way (PLAYBACKSTATUS comes when it ends or is cut)
        self.hangup_handlers: list[tuple[str, str, int, str]] = []
        self.on_hangup_request: Callable[[int], None] | None = None  # set by the call driver
        self.finish_on_hangup = False  # no dialplan of its own (agent legs): Hangup right after the request

    # ---- SimLine -------------------------------------------------------------------------
    def header(self, prefix: str = "") -> Fields:
        return [
            (prefix + "Channel", self.name),
            (prefix + "ChannelState", str(self.state)),
            (prefix + "ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (prefix + "CallerIDNum", cid(self.callerid_num)),
            (prefix + "CallerIDName", cid(self.callerid_name)),
            (prefix + "ConnectedLineNum", cid(self.connected_num)),
            (prefix + "ConnectedLineName", cid(self.connected_name)),
            (prefix + "Language", self.language),
            (prefix + "AccountCode", self.accountcode),
            (prefix + "Context", self.context),
            (prefix + "Exten", self.exten),
            (prefix + "Priority", str(self.priority)),
            (prefix + "Uniqueid", self.uniqueid),
            (prefix + "Linkedid", self.linkedid),
        ]

    def emit(self, event: str, fields: dict[str, str] | Fields | None = None) -> None:
        """AMI event for this channel: the channel header, then ``fields`` in order."""
        extra = list(fields.items()) if isinstance(fields, dict) else list(fields or [])
        self._sink(event, self.header() + extra)
        if self.record is not None:
            self.record.on_event(self, event, extra)

    def hangup(self, cause: int = 16) -> None:
        """Our side hangs up: the Hangup(<cause>) app, or ``cause=0`` for AGI ``HANGUP``.

        As in the traces: Hangup() gives SoftHangupRequest Cause 16 and sets HANGUPCAUSE; AGI HANGUP
        gives SoftHangupRequest Cause 32 (AST_SOFTHANGUP_EXPLICIT) and leaves HANGUPCAUSE at 0.
        """
        if self.hungup.is_set():
            return
        if cause:
            self.hangupcause = cause
        self.emit("SoftHangupRequest", [("Cause", "16" if cause else "32")])
        first = not self.hangup_requested.is_set()
        self.hangup_requested.set()
        if first and self.on_hangup_request is not None:
            self.on_hangup_request(cause)
        if self.finish_on_hangup:
            self.finish(cause or None)

    # ---- helpers used by the switch and the dialplan ----------------------------------------
    @property
    def up(self) -> bool:
        return not self.hungup.is_set()

    def request_hangup(self, cause: int = 16, *, soft: bool = False, emit: bool = True) -> None:
        """Ask the channel to hang up: SoftHangupRequest (ours) or HangupRequest (the far end's)."""
        if self.hungup.is_set():
            return
        leg = self.far_leg
        far_first = not soft and leg is not None and leg.up and not leg.hangup_requested.is_set()
        if far_first:
            # the far end (the ;2 half of a Local pair) hangs up: its events come first (traces)
            assert leg is not None
            if leg.playing:
                leg.playing = False
                leg.set_var("PLAYBACKSTATUS", "SUCCESS")
            if leg.application != "Hangup":  # the callee's own Hangup() step already said so
                leg.newexten("Hangup", str(cause), priority=leg.priority + 1)
            leg.emit("SoftHangupRequest", [("Cause", "16")])
            leg.hangup_requested.set()
        if emit:
            self.emit("SoftHangupRequest" if soft else "HangupRequest", [("Cause", str(cause))])
        if far_first:
            assert leg is not None
            leg.finish(cause)
        if cause and not self.hangupcause:
            self.hangupcause = cause
        first = not self.hangup_requested.is_set()
        self.hangup_requested.set()
        if first and self.on_hangup_request is not None:
            self.on_hangup_request(cause)
        if self.finish_on_hangup:
            self.finish(cause or None)

    def set_var(self, name: str, value: str, *, event: bool = True) -> None:
        """Set a channel variable; ``__X``/``_X`` store X and mark it inheritable (always / one level)."""
        bare = name.lstrip("_")
        if name.startswith("__"):
            self.inheritable.add(bare)
        elif name.startswith("_"):
            self.inherit_once.add(bare)
        self.variables[bare] = value
        if event:
            self.emit("VarSet", [("Variable", name), ("Value", value)])

    def get_var(self, name: str) -> str | None:
        return self.variables.get(name)

    def newstate(self, state: int) -> None:
        if state != self.state:
            self.state = state
            self.emit("Newstate")

    def newexten(self, app: str, appdata: str, *, exten: str | None = None, priority: int | None = None,
                 context: str | None = None) -> None:
        if context is not None:
            self.context = context
        if exten is not None:
            self.exten = exten
        if priority is not None:
            self.priority = priority
        self.application, self.appdata = app, appdata
        self.emit("Newexten", [("Extension", self.exten), ("Application", app), ("AppData", appdata)])

    def finish(self, cause: int | None = None) -> None:
        """The Hangup event: the channel is gone."""
        if self.hungup.is_set():
            return
        if cause is not None:
            self.hangupcause = cause
        if self.final_priority is not None:
            self.priority = self.final_priority
        c = self.hangupcause
        self.emit("Hangup", [("Cause", str(c)), ("Cause-txt", CAUSE_TEXT.get(c, "Unknown"))])
        self.hangup_requested.set()
        self.hungup.set()

    def duration(self) -> str:
        s = max(0, int(self.clock.now() - self.created))
        return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"

    def __repr__(self) -> str:  # pragma: no cover
        return f"<Channel {self.name} {self.uniqueid} {STATE_DESC.get(self.state)}>"


def inherit_variables(parent: Any, child: Any) -> None:
    """What a channel created from ``parent`` (a queue member's leg, a Dial) gets of its variables,
    as Asterisk does it (ast_channel_inherit_variables): ``__X`` goes on to every channel created
    from it and from them, ``_X`` to the channels it creates only; every other variable stays."""
    for name in getattr(parent, "inheritable", ()):
        if name in parent.variables:
            child.variables[name] = parent.variables[name]
            child.inheritable.add(name)
    for name in getattr(parent, "inherit_once", ()):
        if name in parent.variables:
            child.variables[name] = parent.variables[name]


class Bridge:
    """A basic two-party bridge (Dial, Queue) and its AMI events, fields as in the traces."""

    def __init__(self, uniqueid: str, sink: Callable[[str, Fields], None]) -> None:
        self.uniqueid = uniqueid
        self._sink = sink
        self.channels: list[Channel] = []

    def header(self) -> Fields:
        return [("BridgeUniqueid", self.uniqueid), ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"),
                ("BridgeCreator", "<unknown>"), ("BridgeName", "<unknown>"),
                ("BridgeNumChannels", str(len(self.channels))), ("BridgeVideoSourceMode", "none")]

    def create(self) -> None:
        self._sink("BridgeCreate", self.header())

    def enter(self, chan: Channel) -> None:
        self.channels.append(chan)
        chan.bridge_id, chan.bridge = self.uniqueid, self
        self._sink("BridgeEnter", self.header() + chan.header())

    def leave(self, chan: Channel) -> None:
        if chan in self.channels:
            self.channels.remove(chan)
        chan.bridge_id, chan.bridge = "", None
        self._sink("BridgeLeave", self.header() + chan.header())

    def destroy(self) -> None:
        self._sink("BridgeDestroy", self.header())
