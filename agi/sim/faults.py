"""Fault injection for tests of the originator and the FastAGI server (``sim.faults``).

AMI faults act on the simulator's AMI sessions at once. FastAGI faults are attributes the FastAGI
client (agi.sim.agi_client, agi.sim.agi_session) reads on every AGI() step: ``agi_connect_delay``,
``agi_never_connect``, ``agi_close_on``. Set them at any time; they apply to the next step/command.

``response_first`` is the event order a loaded Asterisk shows (tests/traces/INDEX.txt, third batch):
the OriginateResponse of a failed call is written by the originate thread itself, while the call's
Newchannel/Hangup go through the message router, so under load the response can reach the wire
first. That share of failed calls (drawn per number and dial, seeded: the same calls every run)
gets its OriginateResponse before any of its channel events; those follow ``router_lag`` seconds
later, in the order the ami-originate-*-response-first.txt traces show.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import Mapping

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.ami_server import AmiServer


@dataclass
class Faults:
    refuse_logins: bool = False  # every Login gets "Authentication failed" (after ~1 s) and a close
    agi_connect_delay: float = 0.0  # simulated seconds before the FastAGI connection is made
    agi_never_connect: bool = False  # never connect: after Asterisk's 2 s connect timeout AGISTATUS=FAILURE
    agi_close_on: str | None = None  # close the AGI socket, no reply, on a command starting with this ("*": any)
    stall_until: float = 0.0  # time.monotonic() until which AMI output is held back (stall_ami)
    response_first: float = 0.0  # share (0..1) of failed calls whose OriginateResponse precedes their events
    response_first_seed: int = 1  # which calls those are (per number and dial: reproducible)
    router_lag: float = 0.005  # wall seconds the channel events of such a call come after its response
    _server: AmiServer | None = field(default=None, repr=False)

    # ---- event order -------------------------------------------------------------------------
    def is_response_first(self, number: str, nth: int) -> bool:
        """Whether the ``nth`` dial (0, 1, ...) of ``number``, if it fails, gets its response first."""
        if self.response_first <= 0:
            return False
        if self.response_first >= 1:
            return True
        digest = hashlib.sha256(f"{self.response_first_seed}:{number}:{nth}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.response_first

    def configure(self, settings: Mapping[str, Any]) -> None:
        """Set faults from a plan file's ``[faults]`` table (only the event-order options)."""
        known = {"response_first": float, "response_first_seed": int, "router_lag": float}
        unknown = set(settings) - set(known)
        if unknown:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}; known: {sorted(known)}")
        for name, value in settings.items():
            try:
                value = known[name](value)
            except (TypeError, ValueError):
                raise ValueError(f"[faults] {name} = {value!r}: expected a number") from None
            if name == "response_first" and not 0.0 <= value <= 1.0:
                raise ValueError(f"[faults] response_first = {value}: a share between 0 and 1")
            if name == "router_lag" and value < 0:
                raise ValueError(f"[faults] router_lag = {value}: seconds, 0 or more")
            setattr(self, name, value)

    # ---- AMI -------------------------------------------------------------------------------
    def drop_ami(self) -> int:
        """Close every AMI connection now (as if Asterisk died); returns how many were closed."""
        return self._server.drop_all() if self._server else 0

    def stall_ami(self, seconds: float) -> None:
        """Hold every AMI reply and event back for ``seconds`` (wall clock) from now; 0 ends a stall.

        Nothing is lost: what was held is written, in order, when the stall ends.
        """
        self.stall_until = time.monotonic() + seconds if seconds > 0 else 0.0
        if self._server is not None:
            self._server.stall_changed()

    def send_malformed(self, line: bytes = b"this line has no colon and no CRLF ending\n") -> int:
        """Write a malformed line to every logged-in AMI session; returns how many got it."""
        return self._server.send_raw_all(line) if self._server else 0

    def clear(self) -> None:
        self.refuse_logins = False
        self.agi_connect_delay = 0.0
        self.agi_never_connect = False
        self.agi_close_on = None
        self.response_first = 0.0
        self.stall_ami(0)
