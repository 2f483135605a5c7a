"""The campaigns assigned to this dialer, reloaded every second, each one's state moved on this
dialer (agi.rules.lifecycle, seed 003): scheduled, running, paused for agents or for a FastAGI
server, stopped, completed.

A campaign's state here depends on a FastAGI server being alive at the address our calls are sent
to (``AgiServers``): without one every answered call would be lost, so nothing is dialed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agi.db import agi_servers, drops
from agi.originator import store
from agi.originator.agents import AgentWatch
from agi.originator.calls import CallTracker
from agi.originator.clock import Clock, as_dt
from agi.originator.limits import RateLimiter
from agi.outcomes import CampaignState
from agi.rules.lifecycle import AGI_STALE_AFTER_S, DialerView, dialer_state
from agi.rules.pacing import PacingHistory
from agi.rules.predial import DialPolicy
from agi.rules.window import CallingWindow

log = logging.getLogger("agi.originator.campaigns")


@dataclass
class CampaignRun:
    """One assigned campaign as this dialer works it."""

    row: object  # the Campaign row (+ lines_here, state_here)
    state: CampaignState
    bucket: RateLimiter  # its calls per second (real time)
    history: PacingHistory = field(default_factory=PacingHistory)
    policy: DialPolicy | None = None
    window: CallingWindow | None = None
    nothing_due_until: float = 0.0  # real time (Clock.elapsed): no claim before (nothing was due)
    agents: AgentWatch = field(default_factory=AgentWatch)
    dropped_window: int = 0
    live_window: int = 0
    work_left: bool = True
    # agents waiting for a line (agi.rules.pacing.line_limited), since when (call time), and the
    # lines its history says it would use (lines_needed); None: not line-limited
    line_limited_since: float | None = None
    line_limited_at: float = 0.0  # last seen line-limited
    lines_wanted: int | None = None
    calls_to_start: int | None = None  # the pacing's last answer here (None: not paced since it ran)
    dial_level: float | None = None  # ... and the dial level it reached (agi.rules.pacing.dial_level)

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def lines_here(self) -> int:
        return self.row.lines_here if self.row.lines_here is not None else self.row.lines


class AgiServers:
    """Is a FastAGI server alive at the address our calls are sent to? When none is, the
    addresses where others are alive are kept for the log: a different one is a configuration slip."""

    def __init__(self, address: str, clock: Clock) -> None:
        self.address = address
        self.addresses = agi_servers.agi_addresses(address)
        self.clock = clock
        self.alive = True  # until the first check
        self.elsewhere: list[str] = []

    async def check(self, conn: AsyncConnection) -> bool:
        fresh = self.clock.wall() - dt.timedelta(seconds=AGI_STALE_AFTER_S)  # heartbeats are wall-clock
        self.alive = bool(await agi_servers.alive(conn, self.addresses, fresh))
        if not self.alive:
            self.elsewhere = sorted(r.address for r in await agi_servers.all_servers(conn)
                                    if r.stopped_at is None and r.last_beat and r.last_beat >= fresh)
        return self.alive


class Campaigns:
    """Keeps ``runs`` (campaign id -> CampaignRun) equal to this dialer's assignments."""

    def __init__(self, engine: AsyncEngine, clock: Clock, runs: dict[int, CampaignRun], tracker: CallTracker,
                 agi: AgiServers, *, dialer_id: int, dialer_name: str) -> None:
        self.engine = engine
        self.clock = clock
        self.runs = runs
        self.tracker = tracker
        self.agi = agi
        self.dialer_id = dialer_id
        self.name = dialer_name

    async def refresh(self) -> None:
        """Reload the assigned campaigns and move each one's state on this dialer."""
        now = self.clock.now()
        async with self.engine.begin() as conn:
            rows = await store.assigned_campaigns(conn, self.dialer_id)
            await self.agi.check(conn)
            for row in rows:
                run = self._take_up(row)
                run.work_left = await store.work_left(conn, row.id)
                await self._move(conn, run, now)
            for gone in set(self.runs) - {row.id for row in rows}:
                del self.runs[gone]

    def _take_up(self, row) -> CampaignRun:
        """The run of ``row``, new or updated with its settings as now stored."""
        run = self.runs.get(row.id)
        if run is None:
            run = self.runs[row.id] = CampaignRun(row=row, state=CampaignState(row.state_here),
                                                  bucket=RateLimiter(row.cps))
        if run.row.cps != row.cps:
            run.bucket.set_rate(row.cps)
        run.row = row
        run.policy = DialPolicy.from_campaign(row)
        run.window = CallingWindow.from_campaign(row)
        return run

    async def _move(self, conn: AsyncConnection, run: CampaignRun, now: float) -> None:
        """The campaign's state on this dialer now; stored when it changed (or the row differs)."""
        new = dialer_state(self.view(run, now))
        if new is run.state and run.row.state_here == new.value:
            return
        if new is not run.state:
            self._log_change(run, new)
        run.state = new
        await store.set_dialer_state(conn, self.dialer_id, run.id, new, as_dt(now))
        if new is CampaignState.COMPLETED:
            await store.complete_if_all_done(conn, run.id, as_dt(now))

    def _log_change(self, run: CampaignRun, new: CampaignState) -> None:
        if new is not CampaignState.PAUSED_NO_AGI_SERVER:
            log.info("dialer %s: campaign %s %s -> %s", self.name, run.row.name, run.state.value, new.value)
            return
        elsewhere = (f"; servers alive at other addresses: {', '.join(self.agi.elsewhere)} "
                     f"(set DIALER_AGI_PUBLIC / --agi to the address Asterisk reaches)"
                     if self.agi.elsewhere else "")
        log.warning("dialer %s: campaign %s paused: no FastAGI server alive at %s (is `dialer "
                    "serve` running?); dialing resumes by itself when one is%s",
                    self.name, run.row.name, self.agi.address, elsewhere)

    def view(self, run: CampaignRun, now: float) -> DialerView:
        """What agi.rules.lifecycle needs to know of the campaign on this dialer at ``now``."""
        row = run.row
        in_schedule = True
        if row.schedule:
            in_schedule = CallingWindow(dt.time(0), dt.time(0), row.schedule, row.schedule_tz).allowed_at(
                as_dt(now), ("UTC",))
        no_agents_for = 0.0
        if row.queue_name and run.agents.no_agents_since is not None:
            no_agents_for = now - run.agents.no_agents_since
        return DialerView(
            campaign_state=CampaignState(row.state), now=as_dt(now), start_at=row.start_at,
            stop_at=row.stop_at, in_schedule=in_schedule, lines=run.lines_here,
            work_left=run.work_left, calls_in_progress=len(self.tracker.active(row.id)),
            agent_campaign=bool(row.queue_name), no_agents_for_s=no_agents_for,
            agi_server_alive=self.agi.alive,
        )

    async def refresh_drop_counts(self) -> None:
        """Each campaign's dropped and live calls within its drop window (all dialers)."""
        now = self.clock.now()
        async with self.engine.connect() as conn:
            for run in self.runs.values():
                since = as_dt(now - run.row.drop_window_hours * 3600)
                run.dropped_window, run.live_window = await drops.drop_counts(conn, run.id, since)
