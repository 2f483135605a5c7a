"""Queue option ``F(context^exten^priority)``: when the caller hangs up after a bridge, the member's
leg goes on at that place of the dialplan and runs its wrap-up FastAGI (dialplan/dialer.conf
[dialer-wrapup]), where the simulated agent keys a disposition; after-call work follows."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from agi.sim.callee import Callee, far_end
from agi.sim.channels import inherit_variables
from agi.sim.dialplan import Dialplan, agi_args_of, split_args
from agi.sim.expressions import function, substitute
from agi.sim.queue_legs import drop_leg
from agi.sim.queue_model import Member, QueueState

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.agi_session import AgiSession
    from agi.sim.queues import QueueSystem


class AgentLeg:
    """The member's channel when the switch does not provide one (a minimal ``SimLine``)."""

    def __init__(self, caller: Any, member: Member, clock: Any, callee: Callee) -> None:
        self.name = member.interface.split("/n")[0] + "-leg;1"
        self.uniqueid = f"{caller.uniqueid}-agent"
        self.variables: dict[str, str] = {}
        self.inheritable: set[str] = set()
        inherit_variables(caller, self)  # only the caller's __X and _X, as on a real Asterisk
        self.clock = clock
        self.hungup = asyncio.Event()
        self.callee = callee
        self.answered_at = clock.now()
        self.callerid_num = getattr(caller, "callerid_num", "")
        self.callerid_name = getattr(caller, "callerid_name", "")
        self.events: list[tuple[str, dict[str, str]]] = []

    def emit(self, event: str, fields: dict[str, str]) -> None:
        self.events.append((event, dict(fields)))

    def hangup(self, cause: int = 16) -> None:
        self.hungup.set()


async def wrapup(system: QueueSystem, s: AgiSession, q: QueueState, m: Member, where: tuple[str, str, int],
                 leg: Any = None) -> None:
    """Queue option F: the member's leg continues at the wrap-up place and runs its FastAGI."""
    callee = system.agent_callee(q)
    context, exten, priority = where
    if leg is not None:  # the member's own channel goes on in the dialplan
        leg.callee = callee
        leg.context, leg.exten, leg.priority = context or getattr(leg, "context", ""), exten, priority
        leg.answered_at = s.clock.now()  # it inherited the caller's variables when it was created
    elif system.agent_line_factory is not None:
        leg = system.agent_line_factory(s.line, m, callee)
    else:
        leg = AgentLeg(s.line, m, s.clock, callee)
    agi = _wrapup_agi(system.dialplan, leg, (context or getattr(leg, "context", ""), exten, priority),
                      f"{s.host}:{s.port}")
    try:
        if agi is not None and s.run_agi is not None:
            script, args, servers = agi
            for host, port in servers:  # the next FastAGI server while one is unreachable (failover)
                result = await s.run_agi(leg, host, port, script, args, context=context, extension=exten,
                                         priority=priority, server_timeout=s.server_timeout)
                if result.status != "FAILURE":
                    break
            system.wrapups.append(result)
    finally:
        far_end(leg).cancel()
        drop_leg(leg, 16)
        q.after_call(m, s.clock.now(), system.rng)


def _wrapup_agi(dialplan: Dialplan, leg: Any, where: tuple[str, str, int],
                agi_default: str) -> tuple[str, list[str], list[tuple[str, int]]] | None:
    """The FastAGI script and arguments of the ``AGI()`` the F() target runs, expanded with the
    agent leg's own variables (dialplan/dialer.conf [dialer-wrapup]), and the servers it tries in
    turn (each ``AGI_TRY`` of the failover); None if it runs none."""
    context, exten, priority = where
    step = dialplan.find(context, exten, priority)
    while step is not None and step.app.upper() == "SET":  # Set(AGI_TRY=1): the failover's counter
        priority += 1
        step = dialplan.find(context, exten, priority)
    if step is None or step.app.upper() != "AGI":
        return None

    def expanded(attempt: int) -> str:
        def lookup(name: str) -> str:
            if name == "AGI_TRY":
                return str(attempt)
            found = function(name, lookup)
            if found is not None:
                return found
            value = leg.variables.get(name)
            if value is None:
                value = agi_default if name == "DIALER_AGI" else dialplan.globals.get(name, "")
            return value

        return substitute(step.args, lookup)

    count = max(1, len([a for a in (leg.variables.get("DIALER_AGI") or agi_default).split("&") if a]))
    servers = []
    for attempt in range(1, count + 1):
        url, *args = split_args(expanded(attempt))
        host, script, port, _ = agi_args_of(url)
        servers.append((host, port))
    return script, args, servers


def f_option(options: str) -> tuple[str, str, int] | None:
    """Queue option F(context^exten^priority) -> where the member's leg goes after the caller hangs up."""
    i = options.find("F(")
    if i < 0:
        return None
    inner = options[i + 2 : options.index(")", i)] if ")" in options[i:] else ""
    parts = inner.split("^")
    if len(parts) == 3:
        context, exten, prio = parts
    elif len(parts) == 2:
        context, (exten, prio) = "", parts
    else:
        context, exten, prio = "", "", parts[0]
    try:
        priority = int(prio)
    except ValueError:
        priority = 1
    return context, exten or "s", priority
