"""FastAGI servers' heartbeats: `dialer serve` beats, the originator and the admin read.

One row per address Asterisk reaches (what the originator sends as ``__DIALER_AGI``). A
server that stops gracefully says so at once (``stopped_at``), so no call is sent to it
while it drains; one that dies is found by its stale beat (agi.rules.lifecycle).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from agi.db.models import AgiServer
from agi.settings import parse_hostport

_s = AgiServer.__table__
AGI_PORT = 4573  # Asterisk's default FastAGI port (agi://host without a port)


def agi_addresses(text: str) -> tuple[str, ...]:
    """'host[:port][,host[:port]...]' (settings agi_public; '&' separates too, as in the channel
    variable) -> normalised 'host:port' addresses, in order (the order calls try them)."""
    out = []
    for part in re.split(r"[,&]", text or ""):
        if part.strip():
            host, port = parse_hostport(part.strip(), AGI_PORT)
            out.append(f"{host}:{port}")
    return tuple(dict.fromkeys(out))


async def beat(conn: AsyncConnection, address: str, *, hostname: str, pid: int, live_sessions: int,
               now: dt.datetime, started_at: dt.datetime) -> None:
    """This server is alive at ``now`` with ``live_sessions`` calls (insert or update its row)."""
    dialect = {"postgresql": postgresql, "sqlite": sqlite}[conn.dialect.name]
    stmt = dialect.insert(_s).values(address=address, hostname=hostname, pid=pid, started_at=started_at,
                                     last_beat=now, stopped_at=None, live_sessions=live_sessions)
    await conn.execute(stmt.on_conflict_do_update(index_elements=[_s.c.address], set_={
        "hostname": stmt.excluded.hostname, "pid": stmt.excluded.pid, "started_at": stmt.excluded.started_at,
        "last_beat": stmt.excluded.last_beat, "stopped_at": None, "live_sessions": stmt.excluded.live_sessions,
    }))


async def mark_stopped(conn: AsyncConnection, address: str, pid: int, now: dt.datetime, live_sessions: int) -> None:
    """A graceful stop: no new call should be sent here from now on (its own row only), with the
    calls it still has; marked again after the drain, the stop keeps its first time."""
    await conn.execute(update(_s).where(_s.c.address == address, _s.c.pid == pid)
                       .values(stopped_at=func.coalesce(_s.c.stopped_at, now), last_beat=now,
                               live_sessions=live_sessions))


async def alive(conn: AsyncConnection, addresses: tuple[str, ...], fresh_since: dt.datetime) -> set[str]:
    """Which of ``addresses`` have a server beating since ``fresh_since`` and not stopped."""
    if not addresses:
        return set()
    rows = await conn.execute(select(_s.c.address).where(
        _s.c.address.in_(addresses), _s.c.last_beat >= fresh_since, _s.c.stopped_at.is_(None)))
    return set(rows.scalars())


async def all_servers(conn: AsyncConnection) -> list:
    """Every server row, newest beat first (for `dialer dialers list` and status views)."""
    return list((await conn.execute(select(_s).order_by(_s.c.last_beat.desc()))).all())


def dialplan_value(text: str) -> str:
    """The ``__DIALER_AGI`` channel variable for ``text``: the addresses joined by '&', which
    dialer.conf's CUT() walks (a comma would split the AMI Variable header)."""
    return "&".join(agi_addresses(text)) or text
