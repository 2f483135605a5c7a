"""Call flows, one module per flow, and the router ``dialer serve`` runs them with.

Script paths (dialplan/dialer.conf): outbound, fax, hangup, wrapup.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from agi.db.engine import make_engine
from agi.fastagi import Router
from agi.flows.context import FlowContext
from agi.flows.fax import fax
from agi.flows.hangup import hangup
from agi.flows.outbound import outbound
from agi.flows.wrapup import wrapup
from agi.settings import Settings

FLOWS = {"outbound": outbound, "fax": fax, "hangup": hangup, "wrapup": wrapup}


def build_router(settings: Settings, engine: AsyncEngine | None = None,
                 clock: Callable[[], dt.datetime] | None = None) -> Router:
    """The FastAGI routing table: each script path to its flow, bound to one FlowContext.

    ``clock``: the time the flows write (default the wall clock; the simulator's under `dialer demo`,
    so talk times agree with the answer times the originator writes from the same clock)."""
    own_engine = engine is None
    if engine is None:
        # PostgreSQL: a bounded pool (settings db_pool); the writes of calls writing at once share
        # the writer's held connections (agi.db.writer), so none is opened per call under load
        engine = make_engine(settings.db_url, pool=settings.db_pool)
    ctx = FlowContext(engine, **({"clock": clock} if clock is not None else {}))
    router = Router()
    if own_engine:
        router.on_close(ctx.engine.dispose)  # `dialer serve` releases the pool on shutdown
    router.on_close(ctx.aclose)  # the writes in flight land, the writer's connections go back (runs first)
    for path, flow in FLOWS.items():
        bound = functools.partial(flow, ctx)
        functools.update_wrapper(bound, flow)
        router.add(path, bound)
    router.context = ctx  # type: ignore[attr-defined]  (tests and `dialer run` reach the engine)
    return router
