"""The dial loop of one dialer (one Asterisk box): claim, check, pace, Originate, classify failures.

Every tick it works out each assigned campaign's state (agi.rules.lifecycle), asks the pure
pacing function how many calls to start, claims that many due contacts, checks each again
right before dialing (DNC list, calling window, allowed countries), commits the attempt row,
then sends ``Originate`` with ``ChannelId`` = the attempt id. Calls that never reach the
dialplan get their result here (Reason + Q.850 causes); answered ones belong to the FastAGI
flows. An Originate is sent at most once: after an AMI loss its fate is found from channel
state, never by sending it again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.ami.client import AMIClient, OriginateResult
from agi.ami.errors import AMIActionError, AMIConnectionLost, AMIError, AMINotConnected, AMITimeout
from agi.db import attempts as db
from agi.db import drops
from agi.logs import attempt_extra
from agi.db import agi_servers
from agi.db.claim import claim_due, release_claim
from agi.originator import store
from agi.originator.calls import Call, CallTracker
from agi.originator.reconciler import MAX_CALL_S
from agi.originator.limits import RateLimiter
from agi.outcomes import AmdStatus, CampaignMode, CampaignState, Result, Routing
from agi.rules.compliance import MIN_RING_TIMEOUT_S
from agi.rules.classify import classify_failure, first_cause
from agi.rules.lifecycle import (
    AGI_STALE_AFTER_S,
    HEARTBEAT_STALE_AFTER_S,
    WORKING_STATES,
    DialerView,
    dialer_state,
    may_dial,
)
from agi.rules.pacing import PacingHistory, PacingState, calls_to_start
from agi.rules.predial import Dialable, DialPolicy, check_contact
from agi.rules.window import CallingWindow

log = logging.getLogger("agi.originator")

HANGUP_GRACE_S = 3.0  # wait this long (real) for a failed call's channel events and their causes
ANSWERED_GRACE_S = 10.0  # after an answered call hangs up, the FastAGI flows have this long to report
AGENT_TIME_FLUSH_S = 5.0  # real seconds between two writes of the measured agent time
HOUR_S = 3600.0
SAME_NUMBER_RETRY_S = 30.0  # a contact whose number is in a call already is due again this much later
POLLED_STATES = WORKING_STATES  # agent queues polled while the campaign is worked


def as_dt(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc)


@dataclass
class AgentTime:
    """Agent-seconds measured here and not stored yet, per hour of the clock.

    The originator adds each poll interval (``add``) and, every few seconds and at stop,
    ``take``s the increments to add them to the database (store.add_agent_time); a failed
    write ``give_back``s them for the next flush. Only increments travel, so a flush adds
    what was measured since the previous one and nothing twice.
    """

    pending: dict[float, list[float]] = field(default_factory=dict)  # hour start -> [busy, logged]

    def add(self, t0: float, t1: float, busy_agents: float, logged_agents: float) -> None:
        """Agents counted constant over [t0, t1): split at hour boundaries into agent-seconds."""
        t = t0
        while t < t1:
            hour = math.floor(t / HOUR_S) * HOUR_S
            end = min(t1, hour + HOUR_S)
            cell = self.pending.setdefault(hour, [0.0, 0.0])
            cell[0] += (end - t) * busy_agents
            cell[1] += (end - t) * logged_agents
            t = end

    def take(self) -> dict[dt.datetime, tuple[float, float]]:
        """The pending increments by hour (aware UTC), now cleared here."""
        taken = {as_dt(h): (busy, logged) for h, (busy, logged) in self.pending.items()}
        self.pending.clear()
        return taken

    def give_back(self, taken: dict[dt.datetime, tuple[float, float]]) -> None:
        for hour, (busy, logged) in taken.items():
            cell = self.pending.setdefault(hour.timestamp(), [0.0, 0.0])
            cell[0] += busy
            cell[1] += logged


@dataclass
class CampaignRun:
    """One assigned campaign as this dialer works it."""

    row: object  # the Campaign row (+ lines_here, state_here)
    state: CampaignState
    bucket: RateLimiter
    history: PacingHistory = field(default_factory=PacingHistory)
    policy: DialPolicy | None = None
    window: CallingWindow | None = None
    nothing_due_until: float = 0.0  # real time: no claim before (nothing was due)
    no_agents_since: float | None = None  # clock time since when no agent was available
    agents: dict = field(default_factory=dict)  # logged_in, available, in_call, in_acw, waiting
    acw_pending: list = field(default_factory=list)  # (clock time of AgentComplete, talk seconds)
    dropped_window: int = 0
    live_window: int = 0
    work_left: bool = True
    # agent occupancy as measured here: agent-seconds busy (talk + ACW) and logged in, in all;
    # agent_time holds what is not stored yet
    busy_agent_s: float = 0.0
    logged_agent_s: float = 0.0
    agents_at: float | None = None  # clock time of the last poll counted; None: not observed
    agent_time: AgentTime = field(default_factory=AgentTime)

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def lines_here(self) -> int:
        return self.row.lines_here if self.row.lines_here is not None else self.row.lines


class Originator:
    def __init__(
        self,
        engine: AsyncEngine,
        ami: AMIClient,
        dialer: str,
        *,
        agi_address: str,
        clock: Callable[[], float] = time.time,
        tick: float = 0.2,
        lines: int | None = None,
        cps: float | None = None,
        dial_template: str | None = None,
        context: str = "dialer-outbound",
    ) -> None:
        self.engine = engine
        self.ami = ami
        self.name = dialer
        self.agi_address = agi_address
        self.agi_addresses = agi_servers.agi_addresses(agi_address)
        self.agi_alive = True  # a FastAGI server at agi_address beats (read each refresh)
        self.agi_elsewhere: list[str] = []  # when none does: the addresses where servers beat
        self.clock = clock
        self.tick = tick
        self.context = context
        self._config = dict(lines=lines, cps=cps, dial_template=dial_template)
        self.tracker = CallTracker()
        self.campaigns: dict[int, CampaignRun] = {}
        self.dialer: store.DialerRow | None = None
        self.bucket: RateLimiter | None = None
        self.dialing = True
        self.stats = {"originated": 0, "failed": 0, "answered": 0, "predial": 0, "deferred": 0,
                      "reconciled": 0, "uncertain": 0}
        self._tasks: set[asyncio.Task] = set()
        self._last = {"refresh": 0.0, "heartbeat": 0.0, "drops": 0.0, "reconcile": 0.0,
                      "agent_time": time.monotonic()}

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        """Register the dialer, subscribe to events, resolve what a previous run left."""
        async with self.engine.begin() as conn:
            self.dialer = await store.ensure_dialer(
                conn, self.name, ami_host=self.ami.host, ami_port=self.ami.port, **self._config)
            # a previous run that died left its campaigns "running": say what happened until
            # the first refresh works out the states again
            stale = await store.stop_dialer(conn, self.dialer.id, self._wall(),
                                            only_stale_before=self._wall() - dt.timedelta(seconds=HEARTBEAT_STALE_AFTER_S))
            await store.heartbeat(conn, self.dialer.id, self._wall())
        if stale:
            log.warning("dialer %s: %d campaign(s) were left running by a previous run that died: "
                        "stopped_by_dialer until this run takes them up", self.name, stale)
        self.bucket = RateLimiter(self.dialer.cps)  # CPS limits are wall-clock: they protect the trunk
        self.ami.on_event("Newchannel", self.tracker.on_newchannel)
        self.ami.on_event("Hangup", self._on_hangup)
        self.ami.on_event("QueueCallerJoin", self._on_queue_join)
        self.ami.on_event("AgentConnect", self._on_agent_connect)
        self.ami.on_event("AgentComplete", self._on_agent_complete)
        self.ami.on_event("OriginateResponse", self._on_late_originate_response)
        self.ami.on_connect = self._on_reconnect
        from agi.originator.reconciler import reconcile

        await reconcile(self, startup=True)

    async def run(self, stop: asyncio.Event, drain_deadline: float = 60.0) -> None:
        """Dial until ``stop`` is set, then let calls in progress finish (up to the deadline)."""
        if self.dialer is None:
            await self.start()
        while not stop.is_set():
            try:
                await self.step()
            except AMIError as exc:
                log.warning("dialer %s: AMI: %s", self.name, exc)
            except Exception:
                log.exception("dialer %s: tick failed; going on", self.name)
            try:
                await asyncio.wait_for(stop.wait(), self.tick)
            except TimeoutError:
                pass
        self.dialing = False
        log.info("dialer %s: stopping; %d call(s) in progress", self.name, len(self.tracker.active()))
        deadline = time.monotonic() + drain_deadline
        while len(self.tracker) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            await self._housekeeping(force_verdicts=True)
        await self._flush_agent_time()
        await self._stopped()
        await self.close()

    async def _stopped(self) -> None:
        """A graceful stop: this dialer's campaigns show stopped_by_dialer until it runs again."""
        try:
            async with self.engine.begin() as conn:
                await store.stop_dialer(conn, self.dialer.id, self._wall())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("dialer %s: could not record the stop (%s); its heartbeat goes stale", self.name, exc)

    def occupancy(self, campaign_id: int) -> float | None:
        """Percent of logged-in agent time spent talking or in after-call work, as polled here."""
        run = self.campaigns.get(campaign_id)
        if run is None or run.logged_agent_s <= 0:
            return None
        return 100.0 * run.busy_agent_s / run.logged_agent_s

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def step(self) -> None:
        """One tick: housekeeping, then dial what each running campaign's pacing allows."""
        await self._housekeeping()
        if not (self.dialing and self.ami.connected):
            return
        for run in list(self.campaigns.values()):
            if may_dial(run.state):
                await self._dial_campaign(run)

    # ------------------------------------------------------------------ housekeeping

    def _wall(self) -> dt.datetime:
        """Heartbeats use the wall clock whatever the simulation speed."""
        return dt.datetime.now(dt.timezone.utc)

    def _due(self, what: str, every: float) -> bool:
        now = time.monotonic()
        if now - self._last[what] >= every:
            self._last[what] = now
            return True
        return False

    async def _housekeeping(self, force_verdicts: bool = False) -> None:
        if self._due("heartbeat", 5.0):
            async with self.engine.begin() as conn:
                await store.heartbeat(conn, self.dialer.id, self._wall())
                dead = await store.stop_dead_dialers(
                    conn, self.dialer.id, self._wall() - dt.timedelta(seconds=HEARTBEAT_STALE_AFTER_S))
            for what in dead:
                log.warning("dialer %s: %s stopped_by_dialer (heartbeat stale)", self.name, what)
        if self._due("refresh", 1.0):
            await self._refresh_campaigns()
        if self._due("drops", 2.0):
            await self._refresh_drop_counts()
        if self._due("reconcile", 30.0):
            from agi.originator.reconciler import reconcile

            await reconcile(self)
        await self._poll_agents()
        if self._due("agent_time", AGENT_TIME_FLUSH_S):
            await self._flush_agent_time()
        await self._poll_verdicts()

    async def _refresh_campaigns(self) -> None:
        """Reload assigned campaigns and move each one's state on this dialer (seed 003)."""
        now = self.clock()
        async with self.engine.begin() as conn:
            rows = await store.assigned_campaigns(conn, self.dialer.id)
            await self._check_agi_servers(conn)
            seen = set()
            for row in rows:
                seen.add(row.id)
                run = self.campaigns.get(row.id)
                if run is None:
                    run = CampaignRun(row=row, state=CampaignState(row.state_here),
                                      bucket=RateLimiter(row.cps))
                    self.campaigns[row.id] = run
                if run.row.cps != row.cps:
                    run.bucket.set_rate(row.cps)
                run.row = row
                run.policy = DialPolicy.from_campaign(row)
                run.window = CallingWindow.from_campaign(row)
                run.work_left = await store.work_left(conn, row.id)
                new = dialer_state(self._view(run, now))
                if new is not run.state or row.state_here != new.value:
                    if new is CampaignState.PAUSED_NO_AGI_SERVER and run.state is not new:
                        elsewhere = (f"; servers alive at other addresses: {', '.join(self.agi_elsewhere)} "
                                     f"(set DIALER_AGI_PUBLIC / --agi to the address Asterisk reaches)"
                                     if self.agi_elsewhere else "")
                        log.warning("dialer %s: campaign %s paused: no FastAGI server alive at %s (is `dialer "
                                    "serve` running?); dialing resumes by itself when one is%s",
                                    self.name, row.name, self.agi_address, elsewhere)
                    elif new is not run.state:
                        log.info("dialer %s: campaign %s %s -> %s", self.name, row.name, run.state.value, new.value)
                    run.state = new
                    await store.set_dialer_state(conn, self.dialer.id, row.id, new, as_dt(now))
                    if new is CampaignState.COMPLETED:
                        await store.complete_if_all_done(conn, row.id, as_dt(now))
            for gone in set(self.campaigns) - seen:
                del self.campaigns[gone]

    def _view(self, run: CampaignRun, now: float) -> DialerView:
        row = run.row
        in_schedule = True
        if row.schedule:
            in_schedule = CallingWindow(dt.time(0), dt.time(0), row.schedule, row.schedule_tz).allowed_at(
                as_dt(now), ("UTC",))
        no_agents_for = 0.0
        if row.queue_name and run.no_agents_since is not None:
            no_agents_for = now - run.no_agents_since
        return DialerView(
            campaign_state=CampaignState(row.state), now=as_dt(now), start_at=row.start_at,
            stop_at=row.stop_at, in_schedule=in_schedule, lines=run.lines_here,
            work_left=run.work_left, calls_in_progress=len(self.tracker.active(row.id)),
            agent_campaign=bool(row.queue_name), no_agents_for_s=no_agents_for,
            agi_server_alive=self.agi_alive,
        )

    async def _check_agi_servers(self, conn) -> None:
        """Is a FastAGI server our calls are sent to alive? (Heartbeats are wall-clock.) When none
        is, the others alive are noted for the log: a different address is a configuration slip."""
        fresh = self._wall() - dt.timedelta(seconds=AGI_STALE_AFTER_S)
        self.agi_alive = bool(await agi_servers.alive(conn, self.agi_addresses, fresh))
        if not self.agi_alive:
            self.agi_elsewhere = sorted(r.address for r in await agi_servers.all_servers(conn)
                                        if r.stopped_at is None and r.last_beat and r.last_beat >= fresh)

    async def _refresh_drop_counts(self) -> None:
        now = self.clock()
        async with self.engine.connect() as conn:
            for run in self.campaigns.values():
                since = as_dt(now - run.row.drop_window_hours * 3600)
                run.dropped_window, run.live_window = await drops.drop_counts(conn, run.id, since)

    async def _poll_agents(self) -> None:
        """QueueSummary + QueueStatus of each agent campaign's queue: who is free, in call, in ACW.

        Agent time is integrated only between two successful polls of a campaign being worked
        (running or paused for agents): a gap (AMI down, the campaign stopped) is not observed,
        so it is not counted.
        """
        polled = {r.id for r in self.campaigns.values() if r.row.queue_name and r.state in POLLED_STATES}
        for run in self.campaigns.values():
            if run.id not in polled or not self.ami.connected:
                run.agents_at = None
        queues = {self.campaigns[i].row.queue_name for i in polled}
        if not queues or not self.ami.connected:
            return
        now = self.clock()
        for queue in queues:
            try:
                summary = await self.ami.queue_summary(queue)
                status = await self.ami.action({"Action": "QueueStatus", "Queue": queue})
            except AMIError as exc:
                log.debug("queue %s: %s", queue, exc)
                for run in self.campaigns.values():
                    if run.row.queue_name == queue:
                        run.agents_at = None
                continue
            row = next((s for s in summary if s.get("Queue") == queue), None)
            members = [m for m in status if m.get("Event") == "QueueMember"]
            logged_in = int(row.get("LoggedIn", 0)) if row else 0
            available = int(row.get("Available", 0)) if row else 0
            waiting = int(row.get("Callers", 0)) if row else 0
            in_call = sum(1 for m in members if str(m.get("InCall", "0")) == "1")
            paused = sum(1 for m in members if str(m.get("Paused", "0")) == "1" and str(m.get("InCall", "0")) != "1")
            in_acw = max(0, logged_in - available - in_call - paused)
            for run in self.campaigns.values():
                if run.row.queue_name != queue:
                    continue
                # agents whose wrap-up ended: the oldest pending AgentCompletes, first in first out
                while len(run.acw_pending) > in_acw:
                    done_at, talk = run.acw_pending.pop(0)
                    run.history.agent_freed(now, talk, max(0.0, now - done_at))
                if run.id in polled:
                    if run.agents_at is not None and run.agents and now > run.agents_at:
                        busy, logged = run.agents["in_call"] + run.agents["in_acw"], run.agents["logged_in"]
                        span = now - run.agents_at
                        run.busy_agent_s += span * busy
                        run.logged_agent_s += span * logged
                        run.agent_time.add(run.agents_at, now, busy, logged)
                    run.agents_at = now
                run.agents = dict(logged_in=logged_in, available=available, in_call=in_call,
                                  in_acw=in_acw, waiting=waiting)
                if available > 0:
                    run.no_agents_since = None
                elif run.no_agents_since is None:
                    run.no_agents_since = now

    async def _flush_agent_time(self) -> None:
        """Add the agent time measured since the last flush to this dialer's rows (every few
        seconds and at stop).

        Stored per dialer, as each dialer measured it. Dialers sharing one Asterisk poll the
        same queue and see the same agents: the report, not this writer, counts those once
        (agi.reports.agent_occupancy takes the larger figure per hour and Asterisk box), so
        no dialer needs to know how many others are polling. A campaign dropped from this
        dialer loses what it had not flushed yet (a few seconds at most).
        """
        if self.dialer is None:
            return
        taken = {run.id: run.agent_time.take() for run in self.campaigns.values() if run.agent_time.pending}
        if not taken:
            return
        try:
            async with self.engine.begin() as conn:
                for campaign_id, increments in taken.items():
                    await store.add_agent_time(conn, campaign_id, self.dialer.id, increments)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("dialer %s: agent time not stored (%s); kept for the next flush", self.name, exc)
            for campaign_id, increments in taken.items():
                run = self.campaigns.get(campaign_id)
                if run is not None:
                    run.agent_time.give_back(increments)

    async def _poll_verdicts(self) -> None:
        """AMD verdicts and routing the FastAGI flows wrote for answered calls: pacing history."""
        pending = [c.attempt_id for c in self.tracker.calls.values()
                   if c.answered and (c.verdict is None or (c.verdict and not c.routed))]
        if not pending:
            return
        async with self.engine.connect() as conn:
            rows = await store.verdicts(conn, pending[:500])
        now = self.clock()
        for r in rows:
            call = self.tracker.calls.get(r.id)
            run = self.campaigns.get(call.campaign_id) if call else None
            if call is None or run is None:
                continue
            if call.verdict is None and (r.amd_status or r.result):
                human = r.amd_status in (AmdStatus.HUMAN.value, AmdStatus.NOTSURE.value) and \
                    r.result in (None, Result.LIVE_ANSWER.value)
                call.verdict = human
                run.history.answered(now, call.answered_at - call.sent_at, human)
            if call.verdict and not call.routed and r.routing:
                call.routed = True
                if r.routing == Routing.DROPPED.value:
                    run.history.dropped(now)
            if call.verdict is not None and r.result:
                call.routed = True  # final: nothing more to learn from this call

    # ------------------------------------------------------------------ AMI events

    def _on_hangup(self, event: dict) -> None:
        call = self.tracker.on_hangup(event)
        if call is not None and call.answered:
            self._spawn(self._after_answered_hangup(call))

    def _on_queue_join(self, event: dict) -> None:
        call = self.tracker.get(event.get("Uniqueid"))
        run = self.campaigns.get(call.campaign_id) if call else None
        if call is None or run is None or call.queued_at is not None:
            return
        now = self.clock()
        call.queued_at = now
        run.history.to_agent(now, now - (call.answered_at or now))

    def _on_agent_connect(self, event: dict) -> None:
        call = self.tracker.get(event.get("Uniqueid"))
        run = self.campaigns.get(call.campaign_id) if call else None
        if call is None or run is None or call.routed:
            return
        call.routed = True
        run.history.connected(self.clock())

    def _on_agent_complete(self, event: dict) -> None:
        call = self.tracker.get(event.get("Uniqueid"))
        run = self.campaigns.get(call.campaign_id) if call else None
        if run is None:
            return
        try:
            talk = float(event.get("TalkTime", 0) or 0)
        except ValueError:
            talk = 0.0
        run.acw_pending.append((self.clock(), talk))

    def _on_reconnect(self) -> None:
        if self.ami.connections > 1:
            self._spawn(self._resync())

    async def _resync(self) -> None:
        """After an AMI outage: calls whose Hangup was missed are over if Asterisk has no channel."""
        from agi.originator.reconciler import live_channel_ids

        alive = await live_channel_ids(self, wait=5.0)
        if alive is None:
            return
        for call in list(self.tracker.calls.values()):
            if call.answered and not call.uncertain and not call.ended.is_set() and call.attempt_id not in alive:
                log.info("attempt %s: hung up during the AMI outage", call.attempt_id,
                         extra=attempt_extra(call.attempt_id))
                call.ended.set()
                self._spawn(self._after_answered_hangup(call))

    def _on_late_originate_response(self, event: dict) -> None:
        """An OriginateResponse whose originate() gave up (AMI trouble): resolve, never re-send."""
        call = self.tracker.get(event.get("Uniqueid") or event.get("ActionID", "").removeprefix("orig-"))
        if call is None or not call.uncertain:
            return
        result = OriginateResult.from_event(event)
        call.uncertain = False
        self._spawn(self._settle(call, result))

    # ------------------------------------------------------------------ dialing

    async def _dial_campaign(self, run: CampaignRun) -> None:
        now = self.clock()
        if time.monotonic() < run.nothing_due_until:
            return
        ours = self.tracker.active(run.id)
        lines_free = min(self.dialer.lines - len(self.tracker.active()), run.lines_here - len(ours))
        wall = time.monotonic()
        cps_budget = min(self.bucket.available(wall), run.bucket.available(wall))
        if lines_free <= 0 or cps_budget <= 0:
            return
        agents = run.agents
        ringing = tuple(now - c.sent_at for c in ours if not c.answered)
        waiting = sum(1 for c in ours if c.queued_at is not None and not c.routed)
        detecting = sum(1 for c in ours if c.answered and c.queued_at is None and c.verdict is not False
                        and not c.routed)
        mode = CampaignMode(run.row.mode)
        if not run.row.queue_name:
            mode = CampaignMode.BROADCAST  # no agents: nothing to pace against
        state = PacingState(
            mode=mode, now=now, lines_free=lines_free, cps_budget=cps_budget, ringing_ages=ringing,
            detecting=detecting, queue_waiting=waiting,
            agents_logged_in=agents.get("logged_in", 0), agents_available=agents.get("available", 0),
            agents_in_call=agents.get("in_call", 0), agents_in_acw=agents.get("in_acw", 0),
            acw_ages=tuple(now - t for t, _ in run.acw_pending),
            ratio=run.row.pacing_ratio, drop_timeout=run.row.drop_timeout,
            stats=run.history.stats(now), dropped_window=run.dropped_window,
            live_window=run.live_window, drop_cap_pct=run.row.drop_cap_pct,
            drop_window_hours=run.row.drop_window_hours,
        )
        n = calls_to_start(state)
        if n <= 0:
            return
        async with self.engine.begin() as conn:
            claimed = await claim_due(conn, run.id, self.name, n, as_dt(now))
        if not claimed:
            run.nothing_due_until = time.monotonic() + 1.0
            return
        await self._check_and_dial(run, claimed, now)

    async def _check_and_dial(self, run: CampaignRun, claimed: list, now: float) -> None:
        """The pre-dial check right before dialing, then one committed attempt per call, then Originate."""
        when = as_dt(now)
        to_dial: list[tuple] = []
        async with self.engine.begin() as conn:
            contacts = await store.contacts_for(conn, [c.contact_id for c in claimed])
            checks = {}
            for c in claimed:
                phones, flag = contacts.get(c.contact_id, ({}, False))
                checks[c.membership_id] = check_contact(phones, flag, run.policy)
            # the DNC list, again, right before dialing (a number added mid-campaign is never dialed)
            listed = await store.dnc_numbers(conn, [d.number for d in checks.values() if isinstance(d, Dialable)])
            # a number already ringing or talking (another contact, campaign or dialer) is not dialed again
            # at the same time: two rows sharing a household phone must not ring it twice at once
            busy = {c.number for c in self.tracker.active()} | await store.numbers_in_call(
                conn, [d.number for d in checks.values() if isinstance(d, Dialable)],
                when - dt.timedelta(seconds=MAX_CALL_S))
            for c in claimed:
                checked = checks[c.membership_id]
                if isinstance(checked, Dialable) and checked.number in listed:
                    checked = Result.DNC
                if not isinstance(checked, Dialable):
                    self.stats["predial"] += 1
                    await db.record_predial(conn, c.membership_id, run.id, c.contact_id, checked,
                                            "checked right before dialing", when,
                                            number=c.number, dialer=self.name)
                    continue
                zones = checked.timezones or ((c.timezone,) if c.timezone else ())
                if not run.window.allowed_at(when, zones):
                    self.stats["deferred"] += 1
                    later = run.window.next_allowed(when, zones)
                    await release_claim(conn, c.membership_id, next_attempt_at=later, now=when)
                    if later is None:
                        log.info("campaign %s: %s never inside its calling window; left for the admin",
                                 run.row.name, checked.number)
                    continue
                if checked.number in busy:
                    self.stats["deferred"] += 1
                    await release_claim(conn, c.membership_id, now=when,
                                        next_attempt_at=when + dt.timedelta(seconds=SAME_NUMBER_RETRY_S))
                    continue
                wall = time.monotonic()
                if self.bucket.available(wall) < 1 or run.bucket.available(wall) < 1:
                    await release_claim(conn, c.membership_id, next_attempt_at=None, now=when)
                    continue
                self.bucket.take(wall)
                run.bucket.take(wall)
                attempt_id = await db.start_attempt(
                    conn, c.membership_id, campaign_id=run.id, contact_id=c.contact_id,
                    dialer=self.name, number=checked.number, attempt_no=c.attempts + 1, now=when)
                to_dial.append((attempt_id, c, checked.number))
                busy.add(checked.number)
        # committed: every attempt row exists before its Originate is sent
        for attempt_id, c, number in to_dial:
            call = self.tracker.add(Call(attempt_id, run.id, c.membership_id, number, sent_at=now))
            run.history.placed(now)
            self._spawn(self._originate(run, call, c.contact_id))

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _originate(self, run: CampaignRun, call: Call, contact_id: int) -> None:
        row = run.row
        timeout = max(MIN_RING_TIMEOUT_S, row.ring_timeout)
        # __: inherited by every channel made from this one (the agent's leg of Queue included)
        variables = {"__ATTEMPT_ID": call.attempt_id, "__CAMPAIGN_ID": row.id, "CONTACT_ID": contact_id,
                     "__DIALER_AGI": self.agi_address,
                     # played by the dialplan if the FastAGI server cannot be reached (dialer.conf)
                     "DIALER_DROP_MESSAGE": row.drop_message}
        channel = self.dialer.dial_template.format(number=call.number)
        self.stats["originated"] += 1
        log.info("attempt %s: originate %s (campaign %s)", call.attempt_id, channel, row.name,
                 extra=attempt_extra(call.attempt_id))
        call.originated_at = self.clock()
        try:
            result = await self.ami.originate(
                channel=channel, context=self.context, exten="s", priority=1, timeout_ms=timeout * 1000,
                caller_id=row.caller_id or None, channel_id=call.attempt_id, variables=variables,
                action_id=f"orig-{call.attempt_id}")
        except AMINotConnected as exc:
            # nothing was sent: not a call; the contact is due again at once, no attempt counted
            await self._finish(call, Result.SERVICE_ERROR, detail=f"AMI not connected: {exc}")
            return
        except (AMITimeout, AMIConnectionLost) as exc:
            # sent, fate unknown: never re-sent; the events or the reconciler will tell
            call.uncertain = True
            self.stats["uncertain"] += 1
            log.warning("attempt %s: originate outcome unknown (%s); resolving from channel state",
                        call.attempt_id, exc, extra=attempt_extra(call.attempt_id))
            self._spawn(self._resolve_uncertain(call))
            return
        except AMIActionError as exc:
            await self._finish(call, Result.SERVICE_ERROR, detail=f"Originate refused: {exc}")
            return
        await self._settle(call, result)

    async def _settle(self, call: Call, result: OriginateResult) -> None:
        """OriginateResponse in hand: answered calls go on in the dialplan, failures end here."""
        if result.success:
            self.stats["answered"] += 1
            call.answered_at = self.clock()
            async with self.engine.begin() as conn:
                if call.originated_at is not None:
                    await db.mark_originated(conn, call.attempt_id, as_dt(call.originated_at))
                await db.mark_answered(conn, call.attempt_id, as_dt(call.answered_at))
            if call.ended.is_set():  # hung up before we got here
                self._spawn(self._after_answered_hangup(call))
            return
        self.stats["failed"] += 1
        failed_at = self.clock()  # it rang until the response, however long its cause then takes
        await call.wait_for_cause(HANGUP_GRACE_S)  # its channel events may still be on their way
        outcome = classify_failure(result.reason, call.causes, call.channel_created)
        run = self.campaigns.get(call.campaign_id)
        if run is not None:
            run.history.unanswered(self.clock(), failed_at - call.sent_at)
        await self._finish(call, outcome, originate_reason=result.reason, hangup_cause=first_cause(call.causes),
                           ended_at=failed_at)

    async def _finish(self, call: Call, result: Result, *, ended_at: float | None = None, **fields) -> None:
        if call.originated_at is not None:
            fields.setdefault("originated_at", as_dt(call.originated_at))
        async with self.engine.begin() as conn:
            await db.finish_attempt(conn, call.attempt_id, result,
                                    ended_at=as_dt(self.clock() if ended_at is None else ended_at), **fields)
        self.tracker.remove(call.attempt_id)

    async def _after_answered_hangup(self, call: Call) -> None:
        """The line is free at hang-up; the flows report the result, or we do after a grace."""
        deadline = time.monotonic() + ANSWERED_GRACE_S
        while True:
            async with self.engine.connect() as conn:
                attempt = await db.get_attempt(conn, call.attempt_id)
            if attempt is None or attempt.result is not None or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.25)
        if attempt is not None and attempt.result is None:
            async with self.engine.begin() as conn:
                await db.finish_unreported(conn, call.attempt_id, ended_at=as_dt(self.clock()),
                                           hangup_cause=first_cause(call.causes),
                                           detail="answered, but the FastAGI flows never reported a result")
        self.tracker.remove(call.attempt_id)

    async def _resolve_uncertain(self, call: Call) -> None:
        """An Originate whose response was lost: wait for the events, else ask Asterisk."""
        while call.uncertain:
            if call.ended.is_set():
                break
            if self.ami.connected:
                try:
                    channels = await self.ami.core_show_channels()
                except AMIError:
                    channels = None
                if channels is not None:
                    alive = any((ch.get("Uniqueid") or "").split(";")[0] == call.attempt_id for ch in channels)
                    if alive:
                        if not call.answered:
                            call.answered_at = self.clock()  # it is up: the dialplan has it
                        call.uncertain = False
                        return
                    if not call.ended.is_set():
                        break
            await asyncio.sleep(1.0)
        if not call.uncertain:
            return
        call.uncertain = False
        if call.answered or call.ended.is_set() and call.causes:
            # a channel existed: classify by its causes (answered ones: the flows may have reported)
            async with self.engine.connect() as conn:
                attempt = await db.get_attempt(conn, call.attempt_id)
            if attempt is not None and attempt.result is not None:
                self.tracker.remove(call.attempt_id)
                return
        result = classify_failure(None, call.causes, channel_created=bool(call.causes))
        await self._finish(call, result if call.causes else Result.OTHER,
                           hangup_cause=first_cause(call.causes),
                           detail="AMI lost before the OriginateResponse; resolved from channel state")
