"""The installation as it is right now, read from the database in one place: `dialer top`, `dialer
status`, /healthz and the metrics' database figures all read this module, so no count exists twice.

- each campaign: its state on each dialer as a reader should see it (agi.rules.lifecycle.seen_state:
  a dialer whose heartbeat stopped works nothing), with the figures its originator published with
  its heartbeat (agi.db.live_stats); the drop rate over the regulatory window and over the last hour
  (agi.db.drops), the agents' occupancy this hour (agi.reports), attempts in the last hour (the
  summary's pace), contacts by state; on request the attempts finished by result;
- each originator: its heartbeat, AMI session and lines; each FastAGI server: its beat and sessions;
- the database: reachable, and its schema revision against the newest one.

Heartbeats are compared with the wall clock (``now``); times of calls are the attempts' own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from functools import cache

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agi.db import agi_servers, drops, live_stats
from agi.db.migrate import head, revision_of
from agi.db.models import Attempt, Campaign, CampaignContact, Dialer, DialerCampaign
from agi.outcomes import CampaignState
from agi.reports.campaign_summary import LINE_USED
from agi.reports.occupancy import agent_occupancy
from agi.rules import health
from agi.rules.lifecycle import (
    AGI_STALE_AFTER_S,
    DIALER_SILENT_AFTER_S,
    WORKING_STATES,
    overall_state,
    seen_state,
)

_a, _c, _cc = Attempt.__table__, Campaign.__table__, CampaignContact.__table__
_d, _dc = Dialer.__table__, DialerCampaign.__table__

# campaigns the live view shows by default: what the admin wants dialed (or a dialer still has calls of)
SHOWN_ADMIN_STATES = (CampaignState.RUNNING, CampaignState.SCHEDULED)
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
HOUR = dt.timedelta(hours=1)


_newest = cache(head)  # the migrations shipped do not change while we run


def _age(then: dt.datetime | None, now: dt.datetime) -> float | None:
    return None if then is None else max(0.0, (now - then).total_seconds())


@dataclass(frozen=True)
class DropRate:
    dropped: int
    live: int  # persons answered (agi.db.drops.COUNTS_AS_LIVE)

    @property
    def pct(self) -> float | None:
        return 100.0 * self.dropped / self.live if self.live else None


@dataclass(frozen=True)
class OnDialer:
    """A campaign on one dialer: its state as a reader sees it, why, and the figures its originator
    published (None while that originator is not beating: old figures would mislead)."""

    dialer: str
    state: CampaignState
    reason: str
    figures: live_stats.CampaignFigures | None


@dataclass(frozen=True)
class CampaignView:
    id: int
    name: str
    mode: str
    admin_state: CampaignState
    state: CampaignState  # overall (agi.rules.lifecycle.overall_state of the dialers' seen states)
    drop_cap_pct: float
    drop_window_hours: int
    drops_window: DropRate  # over the regulatory window
    drops_hour: DropRate  # over the last hour
    occupancy_pct: float | None  # this clock hour; None: no agent logged in
    attempts_last_hour: int
    contacts: dict[str, int]  # ContactState code -> contacts
    dialers: tuple[OnDialer, ...]
    results: dict[str, int] | None = None  # result code -> attempts finished (with_results only)
    in_progress: int | None = None  # attempts without a result yet (with_results only)
    drops_total: DropRate | None = None  # since the campaign began (with_results only)

    def over_cap(self, rate: DropRate) -> bool:
        return rate.pct is not None and rate.pct > self.drop_cap_pct


@dataclass(frozen=True)
class OriginatorView:
    name: str
    lines: int
    last_heartbeat: dt.datetime | None
    beat_age_s: float | None
    stopped_at: dt.datetime | None  # a graceful stop (None: running, or killed)
    ami_connected: bool
    ami_reconnects: int
    lines_in_use: int
    agi_address: str

    @property
    def beating(self) -> bool:
        """Its heartbeat is fresh (not three beats missed) and it has not stopped."""
        return self.stopped_at is None and self.beat_age_s is not None and self.beat_age_s <= DIALER_SILENT_AFTER_S


@dataclass(frozen=True)
class AgiServerView:
    address: str
    hostname: str
    pid: int | None
    last_beat: dt.datetime | None
    beat_age_s: float | None
    stopped_at: dt.datetime | None
    live_sessions: int

    @property
    def alive(self) -> bool:
        return self.stopped_at is None and self.beat_age_s is not None and self.beat_age_s <= AGI_STALE_AFTER_S


@dataclass(frozen=True)
class DatabaseView:
    reachable: bool
    revision: str | None
    head: str
    error: str | None = None

    @property
    def migrated(self) -> bool:
        return self.reachable and self.revision == self.head


@dataclass(frozen=True)
class Snapshot:
    now: dt.datetime
    database: DatabaseView
    campaigns: tuple[CampaignView, ...] = ()
    originators: tuple[OriginatorView, ...] = ()
    agi_servers: tuple[AgiServerView, ...] = ()

    def as_dict(self) -> dict:
        """JSON-ready: every figure, with the derived ones (rates, beating, alive) spelt out."""
        def rate(r: DropRate | None) -> dict | None:
            return None if r is None else {"dropped": r.dropped, "live": r.live, "pct": r.pct}

        def campaign(c: CampaignView) -> dict:
            return {
                "id": c.id, "name": c.name, "mode": c.mode, "admin_state": c.admin_state.value,
                "state": c.state.value, "drop_cap_pct": c.drop_cap_pct, "drop_window_hours": c.drop_window_hours,
                "drop_rate_window": rate(c.drops_window), "drop_rate_hour": rate(c.drops_hour),
                "over_cap_window": c.over_cap(c.drops_window), "over_cap_hour": c.over_cap(c.drops_hour),
                "occupancy_pct": c.occupancy_pct, "attempts_last_hour": c.attempts_last_hour,
                "contacts": dict(c.contacts), "results": c.results, "in_progress": c.in_progress,
                "drops_total": rate(c.drops_total),
                "dialers": [{"dialer": d.dialer, "state": d.state.value, "reason": d.reason,
                             "figures": None if d.figures is None else asdict(d.figures)} for d in c.dialers],
            }

        return {
            "now": self.now.isoformat(),
            "database": {**asdict(self.database), "migrated": self.database.migrated},
            "campaigns": [campaign(c) for c in self.campaigns],
            "originators": [{**asdict(o), "beating": o.beating} for o in self.originators],
            "agi_servers": [{**asdict(s), "alive": s.alive} for s in self.agi_servers],
        }


def checks(snap: Snapshot) -> list[health.Check]:
    """`dialer status`'s checks: the database, each originator, each FastAGI server not retired."""
    db = snap.database
    out = [health.database(db.reachable, db.revision, db.head, db.error)]
    if not db.migrated:
        return out
    out += [health.originator(o.name, last_beat=o.last_heartbeat, beat_age_s=o.beat_age_s, beating=o.beating,
                              stopped_at=o.stopped_at, ami_connected=o.ami_connected, lines_in_use=o.lines_in_use,
                              lines=o.lines) for o in snap.originators]
    servers = (health.agi_server(s.address, last_beat=s.last_beat, beat_age_s=s.beat_age_s, alive=s.alive,
                                 stopped_at=s.stopped_at, live_sessions=s.live_sessions) for s in snap.agi_servers)
    return out + [c for c in servers if c is not None]


async def revision(conn: AsyncConnection) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    return await conn.run_sync(revision_of)


def _error_text(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def database(engine: AsyncEngine) -> DatabaseView:
    """Is the database reachable, and at the newest schema revision?"""
    try:
        async with engine.connect() as conn:
            return DatabaseView(True, await revision(conn), _newest())
    except (SQLAlchemyError, OSError) as exc:  # unreachable, refused, no such database: say so
        return DatabaseView(False, None, _newest(), _error_text(exc))


async def read(engine: AsyncEngine, now: dt.datetime | None = None, **options) -> Snapshot:
    """The snapshot (``snapshot``'s options), or one saying why the database cannot give it."""
    now = now or dt.datetime.now(dt.timezone.utc)
    try:
        async with engine.connect() as conn:
            db = DatabaseView(True, await revision(conn), _newest())
            if not db.migrated:
                return Snapshot(now, db)
            return await snapshot(conn, now, database=db, **options)
    except (SQLAlchemyError, OSError) as exc:  # unreachable, refused, no such database: say so
        return Snapshot(now, DatabaseView(False, None, _newest(), _error_text(exc)))


async def snapshot(conn: AsyncConnection, now: dt.datetime, *, database: DatabaseView,
                   names: tuple[str, ...] = (), all_campaigns: bool = False, with_results: bool = False) -> Snapshot:
    """Everything the live views show, as of ``now`` (wall clock). ``names``: only these campaigns;
    ``all_campaigns``: every one (default: those the admin wants dialed, or with calls up)."""
    originators = await _originators(conn, now)
    beats = {o.name: o for o in originators}
    placed = await _placements(conn, now, beats)
    rows = (await conn.execute(select(_c.c.id, _c.c.name, _c.c.mode, _c.c.state, _c.c.drop_cap_pct,
                                      _c.c.drop_window_hours).order_by(_c.c.name))).all()
    chosen = [r for r in rows if _shown(r, placed.get(r.id, ()), names, all_campaigns)]
    ids = [r.id for r in chosen]
    contacts = await _grouped(conn, _cc.c.campaign_id, _cc.c.state, ids)
    last_hour = dict((await conn.execute(
        select(_a.c.campaign_id, func.count()).where(_a.c.campaign_id.in_(ids), LINE_USED, _a.c.queued_at >= now - HOUR)
        .group_by(_a.c.campaign_id))).all()) if ids else {}
    results = await _grouped(conn, _a.c.campaign_id, _a.c.result, ids) if with_results else {}
    campaigns = []
    for r in chosen:
        campaigns.append(await _campaign(conn, r, now, placed.get(r.id, ()), contacts.get(r.id, {}),
                                         last_hour.get(r.id, 0), results.get(r.id) if with_results else None))
    return Snapshot(now, database, tuple(campaigns), originators, await _agi_servers(conn, now))


def _shown(row, on: tuple[OnDialer, ...], names: tuple[str, ...], all_campaigns: bool) -> bool:
    if names:
        return row.name in names
    if all_campaigns or CampaignState(row.state) in SHOWN_ADMIN_STATES:
        return True
    return any(d.figures is not None and d.figures.lines_in_use for d in on)


async def _grouped(conn: AsyncConnection, campaign_col, key_col, ids: list[int]) -> dict[int, dict]:
    """campaign id -> {key: count} (a key None stays None: attempts in progress)."""
    out: dict[int, dict] = {}
    if not ids:
        return out
    q = select(campaign_col, key_col, func.count()).where(campaign_col.in_(ids)).group_by(campaign_col, key_col)
    for cid, key, n in (await conn.execute(q)).all():
        out.setdefault(cid, {})[key] = n
    return out


async def _campaign(conn: AsyncConnection, r, now: dt.datetime, on: tuple[OnDialer, ...], contacts: dict,
                    last_hour: int, results: dict | None) -> CampaignView:
    hour_start = now.replace(minute=0, second=0, microsecond=0)
    window = DropRate(*await drops.drop_counts(conn, r.id, now - dt.timedelta(hours=r.drop_window_hours)))
    hour = DropRate(*await drops.drop_counts(conn, r.id, now - HOUR))
    extra = {}
    if results is not None:
        extra = {"in_progress": results.pop(None, 0), "results": results,
                 "drops_total": DropRate(*await drops.drop_counts(conn, r.id, EPOCH))}
    admin = CampaignState(r.state)
    return CampaignView(
        id=r.id, name=r.name, mode=r.mode, admin_state=admin, state=overall_state([d.state for d in on], admin),
        drop_cap_pct=r.drop_cap_pct, drop_window_hours=r.drop_window_hours, drops_window=window, drops_hour=hour,
        occupancy_pct=await agent_occupancy(conn, r.id, since=hour_start, until=hour_start + HOUR),
        attempts_last_hour=last_hour, contacts=contacts, dialers=on, **extra)


async def _originators(conn: AsyncConnection, now: dt.datetime) -> tuple[OriginatorView, ...]:
    published = await live_stats.dialer_rows(conn)
    out = []
    for d in (await conn.execute(select(_d).order_by(_d.c.name))).all():
        p = published.get(d.id)
        out.append(OriginatorView(
            name=d.name, lines=d.lines, last_heartbeat=d.last_heartbeat, beat_age_s=_age(d.last_heartbeat, now),
            stopped_at=p.stopped_at if p else None, ami_connected=bool(p and p.ami_connected),
            ami_reconnects=p.ami_reconnects if p else 0, lines_in_use=p.lines_in_use if p else 0,
            agi_address=p.agi_address if p else ""))
    return tuple(out)


async def _placements(conn: AsyncConnection, now: dt.datetime,
                      beats: dict[str, OriginatorView]) -> dict[int, tuple[OnDialer, ...]]:
    """campaign id -> the campaign on each dialer it is assigned to."""
    published = await live_stats.campaign_rows(conn)
    rows = (await conn.execute(select(_dc.c.dialer_id, _dc.c.campaign_id, _dc.c.state, _d.c.name)
                               .join(_d, _d.c.id == _dc.c.dialer_id).order_by(_d.c.name))).all()
    out: dict[int, list[OnDialer]] = {}
    for r in rows:
        beat = beats[r.name]
        stored = CampaignState(r.state)
        state = seen_state(stored, beat.last_heartbeat, now)
        figures_row = published.get((r.dialer_id, r.campaign_id)) if beat.beating else None
        figures = None if figures_row is None else live_stats.CampaignFigures(
            **{k: getattr(figures_row, k) for k in live_stats.CampaignFigures.__dataclass_fields__})
        reason = _reason(stored, state, beat, figures)
        out.setdefault(r.campaign_id, []).append(OnDialer(r.name, state, reason, figures))
    return {cid: tuple(v) for cid, v in out.items()}


def _reason(stored: CampaignState, seen: CampaignState, beat: OriginatorView, figures) -> str:
    """Why, as published; or what a reader knows when the originator does not say."""
    if stored in WORKING_STATES and not beat.beating:
        if beat.last_heartbeat is None:
            return "its originator never beat"
        silent = f"its originator silent for {beat.beat_age_s:.0f} s (last beat {beat.last_heartbeat:%H:%M:%S} UTC)"
        return silent if seen is stored else f"{silent}: nothing is dialing it"
    if figures is not None:
        return figures.reason
    if seen is CampaignState.STOPPED_BY_DIALER and beat.stopped_at is not None:
        return f"its originator stopped at {beat.stopped_at:%H:%M:%S} UTC"
    return ""


async def _agi_servers(conn: AsyncConnection, now: dt.datetime) -> tuple[AgiServerView, ...]:
    return tuple(sorted((AgiServerView(
        address=r.address, hostname=r.hostname, pid=r.pid, last_beat=r.last_beat, beat_age_s=_age(r.last_beat, now),
        stopped_at=r.stopped_at, live_sessions=r.live_sessions) for r in await agi_servers.all_servers(conn)),
        key=lambda s: s.address))
