"""A queue member's leg as app_queue shows it while it rings, answers and goes away: the Dest*
fields of AgentCalled/DialBegin/DialEnd/AgentConnect..., the member's device state
(QueueMemberStatus), and dropping the leg (both halves of a Local pair)."""

from __future__ import annotations

from typing import Any

from agi.sim.queue_model import INUSE, NOT_INUSE, Member, QueueState, member_fields


def dest_fields(leg: Any, line: Any, *, state: int, exten: str, connected: bool) -> dict[str, str]:
    """The Dest* header of a member leg as app_queue's snapshots show it (empty without a leg)."""
    if leg is None or not hasattr(leg, "header"):
        return {}
    leg.state = state
    leg.exten = exten
    leg.callerid_num = getattr(line, "callerid_num", "")
    leg.callerid_name = getattr(line, "callerid_name", "")
    leg.connected_num = leg.callerid_num if connected else ""
    leg.connected_name = leg.callerid_name if connected else ""
    return dict(leg.header("Dest"))


def agent_event(line: Any, event: str, leg: Any, dest: dict[str, str], q: QueueState, m: Member,
                 **extra: str) -> None:
    fields = dict(dest)
    fields.update({"Queue": q.name, "Interface": m.interface, "MemberName": m.name or m.interface})
    fields.update(extra)
    line.emit(event, fields)


def drop_leg(leg: Any, cause: int, *, peer_too: bool = True) -> None:
    if leg is None:
        return
    finish = getattr(leg, "finish", None)
    if finish is not None:
        finish(cause)
    elif not leg.hungup.is_set():
        leg.hangup(cause)
    peer = getattr(leg, "peer", None)
    if peer_too and peer is not None and getattr(peer, "finish", None) is not None:
        peer.finish(cause)


def member_status(line: Any, q: QueueState, m: Member, *, free: bool = False,
                   in_use: bool = False) -> None:
    """QueueMemberStatus: the member's device state changed (ringing or bridged: in use; free after)."""
    sink = getattr(line, "_sink", None)
    if sink is None:
        return
    fields = member_fields(q, m)
    if free:
        fields.update({"InCall": "0", "Status": str(NOT_INUSE)})
    elif in_use:
        fields["Status"] = str(INUSE)
    sink("QueueMemberStatus", list(fields.items()))


def member_leg_gone(line: Any, q: QueueState, m: Member, peer: Any) -> None:
    peer.emit("SoftHangupRequest", {"Cause": "16"})
    peer.finish(0)
    member_status(line, q, m, free=True)


def local_exten(interface: str) -> str:
    """'Local/agent1@agents/n' -> 'agent1' (the exten a Local member leg starts at); else ''."""
    if interface.startswith("Local/"):
        return interface[6:].split("@", 1)[0]
    return ""


def is_driven(leg: Any) -> bool:
    """A member leg whose ;2 half runs the member's extension of the dialplan (the switch set it up)."""
    return getattr(leg, "dialplan_answered", None) is not None
