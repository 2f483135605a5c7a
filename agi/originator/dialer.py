"""The originator of one dialer (one Asterisk box): its parts put together and run on a tick.

Each part can be read and tested alone, and each is given what it works with:

- campaigns.py  -- the assigned campaigns and their state here (with the FastAGI-server check)
- agent_poll.py -- the agent queues polled over AMI; agents.py keeps each campaign's numbers
- dial.py       -- pace, claim, check right before dialing, commit the attempts
- sender.py     -- send each Originate when the calls-per-second limits allow (limits.py), evenly spaced
- settle.py     -- Originate once, settle the response, resolve an Originate whose reply was lost
- feedback.py   -- what answered calls became (AMD, agent queue), for the pacing history
- reconciler.py -- at start and every 30 s: attempts whose call is gone get a result
- agents_ami.py -- the console's agents: ready/paused over AMI, AgentConnect/AgentComplete recorded
- preview.py    -- preview campaigns: a contact offered to one agent, the agent's phone rung first
- calls.py      -- the calls in progress, from the AMI events; clock.py -- the times
- publish.py    -- the live figures stored with each heartbeat (and shown as metrics)

Calls that never reach the dialplan get their result here (Reason + Q.850 causes); answered ones
belong to the FastAGI flows. An Originate is sent at most once: after an AMI loss its fate is found
from channel state, never by sending it again. The per-call writes go through one AttemptWriter
(agi.db.writer: grouped, one round trip per group on PostgreSQL); while the database cannot be
reached they are tried again and the ticks skip their database work, logged once (agi.db.outage).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.ami.client import AMIClient
from agi.ami.errors import AMIError
from agi.db import live_stats
from agi.db.outage import OUTAGE, transient
from agi.db.writer import AttemptWriter
from agi.metrics import db_write
from agi.originator import store
from agi.originator.agent_poll import AgentPoll
from agi.originator.agents_ami import AgentDesk
from agi.originator.calls import CallTracker
from agi.originator.campaigns import AgiServers, CampaignRun, Campaigns
from agi.originator.clock import Clock, Every
from agi.originator.dial import DialLoop
from agi.originator.feedback import Feedback
from agi.originator.limits import RateLimiter
from agi.originator.preview import PreviewLoop
from agi.originator.publish import Publisher
from agi.originator.reconciler import Reconciler
from agi.originator.sender import Sender
from agi.originator.settle import Settler
from agi.rules.lifecycle import DIALER_BEAT_EVERY_S, HEARTBEAT_STALE_AFTER_S, may_dial

log = logging.getLogger("agi.originator")

# The AMI event classes the originator reads (dialplan/README.md's manager.conf read=): OriginateResponse,
# Newchannel and Hangup (call), the queue's Agent*/QueueCaller* (agent), FullyBooted (system). Asked
# for at login: a user allowed more is not sent the dialplan's and AGI's events (most of a call's).
AMI_EVENTS = "system,call,agent"

# real seconds between two runs of each housekeeping job
HEARTBEAT_S = DIALER_BEAT_EVERY_S  # with the live figures (agi.originator.publish)
REFRESH_S = 1.0
# call-time seconds between two polls of the agent queues (AMI) and of the flows' verdicts
# (database): call time, as what they feed (pacing, an answered call's report) is measured in it;
# at most once per tick (a simulation's faster call time polls every tick), and at least every
# POLL_S real seconds (a test's call time may stand still)
POLL_S = 0.5
DROP_COUNTS_S = 2.0
RECONCILE_S = 30.0
AGENT_TIME_FLUSH_S = 5.0  # between two writes of the measured agent time
AGENTS_S = 0.5  # between two reads of the console's agents (their requests, after-call work)
DRAIN_POLL_S = 0.1
WRITE_GROUP_MAX = 500  # the originator's writes sharing one transaction at most
OUTAGE_PAUSE_S = 0.5  # real seconds between two ticks while the database cannot be reached


class Originator:
    def __init__(
        self,
        engine: AsyncEngine,
        ami: AMIClient,
        dialer: str,
        *,
        agi_address: str,
        clock: Clock | Callable[[], float] = time.time,
        tick: float = 0.1,
        lines: int | None = None,
        cps: float | None = None,
        dial_template: str | None = None,
        context: str = "dialer-outbound",
    ) -> None:
        """``clock``: a Clock (agi.originator.clock), or the call-time function alone (real time
        is then the machine's)."""
        self.engine = engine
        self.ami = ami
        self.name = dialer
        self.agi_address = agi_address
        self.clock = Clock.of(clock)
        self.tick = tick
        self.context = context
        self._config = dict(lines=lines, cps=cps, dial_template=dial_template)
        # the state the parts share, there before start()
        self.tracker = CallTracker()
        self.campaigns: dict[int, CampaignRun] = {}
        self.agi_servers = AgiServers(agi_address, self.clock)
        self.stats = {"originated": 0, "failed": 0, "answered": 0, "predial": 0, "deferred": 0,
                      "reconciled": 0, "uncertain": 0}
        self.dialer: store.DialerRow | None = None  # registered by start()
        self.bucket: RateLimiter | None = None
        self.dialing = True
        self._every = {"heartbeat": self.clock.every(HEARTBEAT_S), "refresh": self.clock.every(REFRESH_S),
                       "drops": self.clock.every(DROP_COUNTS_S), "reconcile": self.clock.every(RECONCILE_S),
                       "agent_time": self.clock.every(AGENT_TIME_FLUSH_S, at_once=False),
                       "poll": Every(POLL_S, self.clock.now), "poll_real": self.clock.every(POLL_S),
                       "agents": self.clock.every(AGENTS_S)}
        # the per-call writes: every kind in one group at a time (nothing waits on them but the next
        # Originates), so a busy second's writes travel in a few round trips
        self.writer = AttemptWriter.for_engine(engine, by_kind=False, group_max=WRITE_GROUP_MAX)

    @property
    def agi_alive(self) -> bool:
        """A FastAGI server at agi_address beats (checked at each campaign refresh)."""
        return self.agi_servers.alive

    def occupancy(self, campaign_id: int) -> float | None:
        """Percent of logged-in agent time spent talking or in after-call work, as polled here."""
        run = self.campaigns.get(campaign_id)
        return run.agents.occupancy if run is not None else None

    # ------------------------------------------------------------------ running

    async def start(self) -> None:
        """Register the dialer, build the parts, subscribe to events, resolve what a previous run left."""
        await self._register()
        self._build(self.dialer)
        self.ami.on_event("Newchannel", self.tracker.on_newchannel)
        self.ami.on_event("Hangup", self.settler.on_hangup)
        self.ami.on_event("QueueCallerJoin", self.feedback.on_queue_join)
        self.ami.on_event("AgentConnect", self.feedback.on_agent_connect)
        self.ami.on_event("AgentComplete", self.feedback.on_agent_complete)
        self.ami.on_event("OriginateResponse", self.settler.on_late_originate_response)
        self.ami.on_event("AgentConnect", self.agent_desk.on_agent_connect)
        self.ami.on_event("AgentComplete", self.agent_desk.on_agent_complete)
        self.ami.on_event("DialBegin", self.preview.on_dial_begin)
        self.ami.on_event("DialEnd", self.preview.on_dial_end)
        self.ami.on_event("Hangup", self.preview.on_hangup)
        self.ami.on_connect = self.settler.on_reconnect
        await self.reconciler.reconcile(startup=True)

    async def _register(self) -> None:
        wall = self.clock.wall()  # heartbeats are wall-clock whatever the simulation speed
        async with self.engine.begin() as conn:
            self.dialer = await store.ensure_dialer(
                conn, self.name, ami_host=self.ami.host, ami_port=self.ami.port, **self._config)
            # a previous run that died left its campaigns "running": say what happened until
            # the first refresh works out the states again
            stale = await store.stop_dialer(conn, self.dialer.id, wall,
                                            only_stale_before=wall - dt.timedelta(seconds=HEARTBEAT_STALE_AFTER_S))
            await store.heartbeat(conn, self.dialer.id, wall)
        if stale:
            log.warning("dialer %s: %d campaign(s) were left running by a previous run that died: "
                        "stopped_by_dialer until this run takes them up", self.name, stale)

    def _build(self, dialer: store.DialerRow) -> None:
        engine, ami, clock, tracker, runs = self.engine, self.ami, self.clock, self.tracker, self.campaigns
        self.bucket = RateLimiter(dialer.cps)  # CPS limits are real time: they protect the trunk
        self.lifecycle = Campaigns(engine, clock, runs, tracker, self.agi_servers, dialer_id=dialer.id,
                                   dialer_name=self.name)
        self.agent_poll = AgentPoll(engine, ami, clock, runs, dialer_id=dialer.id, dialer_name=self.name)
        self.feedback = Feedback(engine, clock, tracker, runs)
        self.settler = Settler(self.writer, ami, clock, tracker, runs, self.stats,
                               dial_template=dialer.dial_template, agi_address=self.agi_address,
                               context=self.context, dialer_name=self.name)
        self.sender = Sender(clock, self.bucket, self.settler.launch)
        self.dial_loop = DialLoop(engine, self.writer, clock, tracker, self.stats, dialer=dialer, sender=self.sender,
                                  horizon=self.tick)
        self.reconciler = Reconciler(engine, ami, clock, tracker, self.stats, dialer_name=self.name)
        self.publisher = Publisher(ami, clock, tracker, runs, self.lifecycle, self.agi_servers,
                                   dialer_lines=dialer.lines)
        self.agent_desk = AgentDesk(engine, ami, clock, dialer_id=dialer.id, dialer_name=self.name)
        self.preview = PreviewLoop(engine, ami, clock, tracker, self.stats, dialer=dialer,
                                   agi_address=self.agi_address, spawn=self.settler.spawn)

    async def run(self, stop: asyncio.Event, drain_deadline: float = 60.0) -> None:
        """Dial until ``stop`` is set, then let calls in progress finish (up to the deadline, real seconds)."""
        if self.dialer is None:
            await self.start()
        while not stop.is_set():
            try:
                await self.step()
            except AMIError as exc:
                log.warning("dialer %s: AMI: %s", self.name, exc)
            except Exception as exc:
                if not transient(exc):
                    log.exception("dialer %s: tick failed; going on", self.name)
                else:  # logged once per outage; claims wait, the calls' writes are retried
                    OUTAGE.failed(f"dialer {self.name}", exc)
                    await asyncio.sleep(OUTAGE_PAUSE_S)
            try:
                await asyncio.wait_for(stop.wait(), self.tick)
            except TimeoutError:
                pass
        self.dialing = False
        log.info("dialer %s: stopping; %d call(s) in progress", self.name, len(self.tracker.active()))
        deadline = self.clock.elapsed() + drain_deadline
        while len(self.tracker) and self.clock.elapsed() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
            try:
                await self._housekeeping()
            except Exception as exc:  # the database may be down: the calls' own writes retry
                if not transient(exc):
                    log.exception("dialer %s: housekeeping failed while draining", self.name)
        await self.agent_poll.flush()
        await self._stopped()
        await self.close()

    async def _stopped(self) -> None:
        """A graceful stop: this dialer's campaigns show stopped_by_dialer until it runs again."""
        try:
            async with self.engine.begin() as conn:
                await store.stop_dialer(conn, self.dialer.id, self.clock.wall())
                await live_stats.mark_stopped(conn, self.dialer.id, self.clock.wall())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("dialer %s: could not record the stop (%s); its heartbeat goes stale", self.name, exc)

    async def close(self) -> None:
        if self.dialer is not None:
            await self.sender.close()
            await self.settler.close()
        await self.writer.close()

    async def step(self) -> None:
        """One tick: housekeeping, then dial what each running campaign's pacing allows."""
        await self._housekeeping()
        if not (self.dialing and self.ami.connected):
            return
        for run in list(self.campaigns.values()):
            if may_dial(run.state) and not PreviewLoop.is_preview(run):
                await self.dial_loop.dial(run)
        await self.preview.step(list(self.campaigns.values()), self.agent_desk.agents)

    # ------------------------------------------------------------------ housekeeping

    async def _housekeeping(self) -> None:
        every = self._every
        if every["heartbeat"].due():
            await self._heartbeat()
        if every["refresh"].due():
            await self.lifecycle.refresh()
            OUTAGE.ok()  # the database answers again (said once, if it was down)
        if every["drops"].due():
            await self.lifecycle.refresh_drop_counts()
        if every["reconcile"].due() and not OUTAGE.down:  # not while calls' writes wait for the database
            await self.reconciler.reconcile()
        call_due, real_due = every["poll"].due(), every["poll_real"].due()
        if call_due or real_due:
            await self.agent_poll.poll()
            await self.feedback.poll_verdicts()
        if every["agent_time"].due():
            await self.agent_poll.flush()
        if every["agents"].due():
            await self.agent_desk.tick()

    async def _heartbeat(self) -> None:
        """Ours, with the live figures; and other dialers' that stopped beating: their campaigns
        read stopped_by_dialer."""
        wall = self.clock.wall()
        dialer, campaigns = self.publisher.figures()
        with db_write("heartbeat"):
            async with self.engine.begin() as conn:
                await store.heartbeat(conn, self.dialer.id, wall)
                await live_stats.publish(conn, self.dialer.id, dialer, campaigns)
                dead = await store.stop_dead_dialers(conn, self.dialer.id,
                                                     wall - dt.timedelta(seconds=HEARTBEAT_STALE_AFTER_S))
        for what in dead:
            log.warning("dialer %s: %s stopped_by_dialer (heartbeat stale)", self.name, what)
