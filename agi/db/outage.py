"""When the database refuses or drops connections: back off, try again, and say so once.

A restarted PostgreSQL, a full ``max_connections`` ("too many clients"), a network blip: every
process keeps going. Writes are idempotent (keyed by the attempt id), so a write whose
connection failed is simply sent again after a pause that doubles up to ``BACKOFF_MAX_S``.
``Outage`` keeps the log readable: the first failure is logged as a warning with what is being
done about it, the end of the outage once with how long it lasted; the failures in between
are counted, not logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psycopg
from sqlalchemy import exc as sa_exc

log = logging.getLogger("agi.db")

T = TypeVar("T")
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
SETTLED_S = 1.0  # an outage ends when nothing failed for this long (successes in between do not end it)
RETRY_FOR_S = 300.0  # a write is given up (its error raised) after trying this long
# SQLSTATE classes of a failed transaction that a second try may not meet: serialization
# failure and deadlock (40), a connection problem (08), too many connections (53), the server
# shutting down or starting (57P0x)
TRANSIENT_SQLSTATE = ("08", "40", "53", "57P")


def transient(exc: BaseException) -> bool:
    """The database could not be reached, dropped the connection or was busy (try again later), as
    opposed to an error a second try would meet again (a bad value, a missing table)."""
    if isinstance(exc, (sa_exc.TimeoutError, ConnectionError, TimeoutError)):
        return True  # no free connection in the pool in time; the socket
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(orig, psycopg.OperationalError):
        state = orig.sqlstate or ""  # none: the connection failed or broke
        return not state or state.startswith(TRANSIENT_SQLSTATE)
    if isinstance(orig, psycopg.InterfaceError):  # used after its connection closed
        return True
    if isinstance(orig, OSError):
        return True
    return "database is locked" in str(orig)  # SQLite: another process's write outlasted the busy timeout


def conflict(exc: BaseException) -> bool:
    """A deadlock or serialization failure (SQLSTATE class 40): transient, yet no outage."""
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    return isinstance(orig, psycopg.Error) and (orig.sqlstate or "").startswith("40")


class Outage:
    """The database's reachability as this process sees it, logged once per outage."""

    def __init__(self, logger: logging.Logger = log, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = logger
        self.clock = clock
        self.since: float | None = None  # monotonic time of the first failure of the current outage
        self.failures = 0
        self.last_failure = -math.inf
        self.reasons: Counter[str] = Counter()  # why tries failed, this outage (said when it ends)
        self.up_since = self.clock()  # ... of the end of the last one (or of the start)

    def reset(self) -> None:
        """Forget any outage (a test starting afresh)."""
        self.since, self.failures, self.last_failure, self.up_since = None, 0, -math.inf, self.clock()
        self.reasons.clear()

    @property
    def down(self) -> bool:
        return self.since is not None

    def up_for(self) -> float:
        """Seconds since the database was last seen coming back (or since start); 0 while it is down."""
        return 0.0 if self.down else self.clock() - self.up_since

    def failed(self, what: str, exc: BaseException) -> None:
        if conflict(exc):  # a deadlock or serialization failure: tried again, but the database is up
            self.log.debug("%s: %s; trying again", what, _first_line(exc))
            return
        self.failures += 1
        self.last_failure = self.clock()
        self.reasons[_reason(exc)] += 1
        if self.since is None:
            self.since = self.clock()
            self.log.warning("database unreachable (%s: %s); retrying with backoff, nothing is lost meanwhile",
                             what, _first_line(exc))

    def ok(self) -> None:
        """A success. The outage ends once nothing has failed for SETTLED_S: while connections
        are scarce (a full ``max_connections``) some get through and others do not, and one
        outage is still said once."""
        if self.since is None:
            return
        now = self.clock()
        if now - self.last_failure < SETTLED_S:
            return
        self.log.warning("database reachable again after %.1f s (%d failed tries: %s)", now - self.since,
                         self.failures, "; ".join(f"{n} x {why}" for why, n in self.reasons.most_common(3)))
        self.since, self.failures, self.up_since = None, 0, now
        self.reasons.clear()


OUTAGE = Outage()  # this process's view of its database (one database per process)


def backoff(tries: int) -> float:
    """Seconds to wait before try ``tries + 1``: doubling from BACKOFF_FIRST_S up to BACKOFF_MAX_S, jittered."""
    base = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** max(0, tries - 1))
    return base * random.uniform(0.75, 1.25)


async def retrying(attempt: Callable[[], Awaitable[T]], what: str, *, retry_for: float = RETRY_FOR_S,
                   outage: Outage = OUTAGE) -> T:
    """``await attempt()`` until it succeeds; a transient database error waits (backoff) and tries
    again, for up to ``retry_for`` seconds, then is raised. Other errors are raised at once."""
    end = time.monotonic() + retry_for
    tries = 0
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not transient(exc) or time.monotonic() >= end:
                raise
            tries += 1
            outage.failed(what, exc)
            await asyncio.sleep(min(backoff(tries), max(0.0, end - time.monotonic())))
            continue
        outage.ok()
        return result


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]


def _reason(exc: BaseException) -> str:
    """The server's own words when it refused (``FATAL: sorry, too many clients already``), else
    the error's first line, short."""
    text = _first_line(exc)
    return (text.rsplit("FATAL:", 1)[1].strip() if "FATAL:" in text else text)[:100]
