"""The contract between the simulated switch (AMI side) and the simulated dialplan/AGI side.

The AMI side owns channels and turns ``emit`` calls into AMI events with the channel's
header fields; the AGI side runs AGI sessions, the person and the agents against a ``SimLine``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.clock import Clock


class SimLine(Protocol):
    """One answered channel as the dialplan and AGI emulation see it."""

    name: str  # channel name, e.g. "PJSIP/trunk-00000001" or "Local/human@callee-00000000;1"
    uniqueid: str  # = the Originate ChannelId
    variables: dict[str, str]  # channel variables: GET/SET VARIABLE and dialplan functions use them
    clock: Clock
    hungup: asyncio.Event  # set once the channel is hung up (by the far end or by us)
    callee: object  # the far end's behaviour (agi.sim.callee.Callee)

    def emit(self, event: str, fields: dict[str, str]) -> None:
        """Send AMI event ``event`` for this channel (the AMI side adds Channel, Uniqueid, ...)."""

    def hangup(self, cause: int = 16) -> None:
        """Our side hangs the channel up (AGI HANGUP, Hangup() app); Q.850 cause."""


def is_dead(line: Any) -> bool:
    """Hung up, or asked to hang up (a channel's soft hang-up request counts)."""
    ev = getattr(line, "hangup_requested", None)
    return line.hungup.is_set() or (ev is not None and ev.is_set())


def dead_event(line: Any) -> asyncio.Event:
    """The event ``is_dead`` waits for: the hang-up request when the line has one, else the hang-up."""
    ev = getattr(line, "hangup_requested", None)
    return ev if ev is not None else line.hungup


def set_var(line: Any, name: str, value: str) -> None:
    """Set a channel variable and emit VarSet (through the channel's own setter when it has one)."""
    setter = getattr(line, "set_var", None)
    if setter is not None:
        setter(name, value)
    else:
        line.variables[name.lstrip("_")] = value
        line.emit("VarSet", {"Variable": name, "Value": value})
