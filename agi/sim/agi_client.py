"""What Asterisk 22's ``AGI(agi://...)`` application does on a channel: connect to the FastAGI server,
send the ``agi_*`` block exactly as the traces show, run the session (agi.sim.agi_session), set
AGISTATUS. A refused or silent server gives AGISTATUS=FAILURE, a hang-up during the session HANGUP.

Fault hooks: ``faults`` is any object; these attributes are read when present (all optional):
- ``agi_connect_delay`` (float, simulated s): wait this long before connecting;
- ``agi_never_connect`` (bool): never connect; after Asterisk's connect timeout AGISTATUS=FAILURE;
- ``agi_close_on``: see agi.sim.agi_session.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from agi.sim.agi_session import AgiSession, AgiSessionResult
from agi.sim.line import set_var

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.line import SimLine
    from agi.sim.queues import QueueSystem

AGI_VERSION = "22.10.1"  # the Asterisk the traces were captured from
AGI_PORT = 4573  # FastAGI default port (res_agi.c AGI_PORT)
CONNECT_TIMEOUT = 2.0  # res_agi.c MAX_AGI_CONNECT: 2000 ms to connect to a FastAGI server

SUCCESS, FAILURE, HANGUP = "SUCCESS", "FAILURE", "HANGUP"  # AGISTATUS values


def agi_env(
    line: SimLine, request: str, script: str, args: list[str], *, context: str, extension: str, priority: int
) -> list[str]:
    """The ``agi_*`` lines Asterisk 22 sends, in its order (res_agi.c setup_env)."""
    tech = line.name.split("/", 1)[0]
    callerid = getattr(line, "callerid_num", "") or line.variables.get("CALLERID(num)", "")
    calleridname = getattr(line, "callerid_name", "") or line.variables.get("CALLERID(name)", "")
    lines = [
        "agi_network: yes",
        f"agi_network_script: {script}",
        f"agi_request: {request}",
        f"agi_channel: {line.name}",
        f"agi_language: {getattr(line, 'language', 'en') or 'en'}",
        f"agi_type: {tech}",
        f"agi_uniqueid: {line.uniqueid}",
        f"agi_version: {AGI_VERSION}",
        f"agi_callerid: {callerid or 'unknown'}",
        f"agi_calleridname: {calleridname or 'unknown'}",
        "agi_callingpres: 0",
        "agi_callingani2: 0",
        "agi_callington: 0",
        "agi_callingtns: 0",
        "agi_dnid: unknown",
        "agi_rdnis: unknown",
        f"agi_context: {context}",
        f"agi_extension: {extension}",
        f"agi_priority: {priority}",
        "agi_enhanced: 0.0",
        f"agi_accountcode: {getattr(line, 'accountcode', '') or ''}",
        f"agi_threadid: {_thread_id()}",
    ]
    lines += [f"agi_arg_{n}: {a}" for n, a in enumerate(args, 1)]
    return lines


def _thread_id() -> int:
    # a pthread_t as glibc prints it: an address in the upper half of the 47-bit user space
    return random.randrange(0x7F0000000000, 0x7FFFFFFFFFFF) & ~0x3F


async def run_agi(
    line: SimLine,
    host: str,
    port: int,
    script: str,
    args: list[str],
    *,
    context: str,
    extension: str,
    priority: int,
    faults: Any = None,
    exit_on_hangup: bool = False,
    queues: QueueSystem | None = None,
    server_timeout: float = 30.0,
    request: str | None = None,
    switch: Any = None,
) -> AgiSessionResult:
    """Run ``AGI(agi://host:port/script,args...)`` on ``line``; sets AGISTATUS and returns what happened.

    ``script`` keeps its query (``outbound?campaign=1``), no leading slash. ``server_timeout`` is in
    wall-clock seconds: how long the client waits for the server's next line before giving up.
    ``exit_on_hangup`` is the channel's ``AGIEXITONHANGUP=yes``.
    """
    script = script.lstrip("/")
    request = request or f"agi://{host}:{port}/{script}"
    result = AgiSessionResult(status=FAILURE, script=script, request=request)
    delay = float(getattr(faults, "agi_connect_delay", 0) or 0) if faults is not None else 0.0
    if delay > 0:
        await line.clock.sleep(delay)
    if faults is not None and getattr(faults, "agi_never_connect", False):
        await line.clock.sleep(CONNECT_TIMEOUT)
        result.error = "fault: FastAGI connection never made"
        set_var(line, "AGISTATUS", FAILURE)
        return result
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout=max(CONNECT_TIMEOUT, 0.5)
        )
    except (TimeoutError, OSError) as exc:
        result.error = f"cannot connect to FastAGI server {host}:{port}: {exc or 'timeout'}"
        set_var(line, "AGISTATUS", FAILURE)
        return result
    result.connected = True
    session = AgiSession(
        line, reader, writer, result, queues=queues, exit_on_hangup=exit_on_hangup,
        server_timeout=server_timeout, faults=faults, host=host, port=port, switch=switch, run_agi=run_agi,
    )
    session.context, session.extension, session.priority = context, extension, priority
    for text in agi_env(line, request, script, args, context=context, extension=extension, priority=priority):
        session.send(text)
    session.send("")
    await session.flush()
    await session.serve()
    result.caller_hung_up = session.went_dead and not result.server_hung_up
    if result.error is not None:
        result.status = FAILURE
    elif session.went_dead:
        result.status = HANGUP
    else:
        result.status = SUCCESS
    set_var(line, "AGISTATUS", result.status)
    return result
