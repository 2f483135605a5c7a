"""Fault injection for tests of the originator and the FastAGI server (``sim.faults``).

AMI faults act on the simulator's AMI sessions at once. FastAGI faults are attributes the FastAGI
client (agi.sim.agi_client.run_agi) reads on every AGI() step: ``agi_connect_delay``,
``agi_never_connect``, ``agi_close_on``. Set them at any time; they apply to the next step/command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.ami_server import AmiServer


@dataclass
class Faults:
    refuse_logins: bool = False  # every Login gets "Authentication failed" (after ~1 s) and a close
    agi_connect_delay: float = 0.0  # simulated seconds before the FastAGI connection is made
    agi_never_connect: bool = False  # never connect: after Asterisk's 2 s connect timeout AGISTATUS=FAILURE
    agi_close_on: str | None = None  # close the AGI socket, no reply, on a command starting with this ("*": any)
    stall_until: float = 0.0  # time.monotonic() until which AMI output is held back (stall_ami)
    _server: "AmiServer | None" = field(default=None, repr=False)

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
        self.stall_ami(0)
