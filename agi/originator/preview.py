"""Preview mode: one due contact offered to one ready agent, who reads it and calls it (agent first).

Each tick, for a running preview campaign: every ready agent of this dialer who works it and has
nothing open gets the next contact (one another agent refused first, else a due one): contact
``operator_assigned``. Once the console shows it, before call work (``bcw``) runs; when the agent
clicks Call or the campaign's countdown runs out, the contact is checked right before dialing (DNC
list, calling window), the attempt is committed, and the agent's phone is originated into
``[dialer-preview]`` (dialplan/dialer.conf), whose ``Dial()`` rings the person.

The result comes from AMI: the agent's channel carries the attempt id (``ChannelId``); its DialEnd
gives DIALSTATUS, the Hangup of the person's leg (DialBegin's DestUniqueid) the Q.850 cause, and the
agent's channel hanging up ends the attempt (agi.rules.dialstatus). Answered: ``live_answer`` +
``agent_connected``, then after-call work in the console. The writes are agi.db.attempts' own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agi.agents import desk, roster
from agi.ami.client import AMIClient
from agi.ami.errors import AMIError
from agi.db import attempts as db
from agi.db.agi_servers import dialplan_value
from agi.db.claim import claim_due, release_claim
from agi.ids import attempt_id_from_uniqueid
from agi.logs import attempt_extra
from agi.originator import store
from agi.originator.calls import Call, CallTracker
from agi.originator.campaigns import CampaignRun
from agi.originator.clock import Clock, as_dt
from agi.outcomes import CampaignMode, ContactState, Result, Routing
from agi.rules.compliance import MIN_RING_TIMEOUT_S
from agi.rules.dialstatus import CAUSE_DECIDES, dial_result
from agi.rules.lifecycle import may_dial
from agi.rules.predial import Dialable, check_contact

log = logging.getLogger("agi.originator.preview")

CONTEXT = "dialer-preview"
AGENT_ANSWER_S = 20  # the agent's phone rings this long before the call is given up
CAUSE_GRACE_S = 1.0  # real seconds to wait for the person's leg's cause after the agent's hang-up


@dataclass
class PreviewCall:
    """A preview call in progress, from the AMI events of the agent's channel and the person's leg."""

    attempt_id: str
    agent_id: int
    interface: str
    person: str | None = None  # Uniqueid of the person's leg (DialBegin DestUniqueid)
    dialstatus: str | None = None
    cause: int | None = None
    answered_at: float | None = None
    agent_up: bool = False  # the agent answered (OriginateResponse Success)
    cause_in: asyncio.Event = field(default_factory=asyncio.Event)


class PreviewLoop:
    def __init__(self, engine: AsyncEngine, ami: AMIClient, clock: Clock, tracker: CallTracker, stats: dict, *,
                 dialer: store.DialerRow, agi_address: str, spawn) -> None:
        self.engine = engine
        self.ami = ami
        self.clock = clock
        self.tracker = tracker
        self.stats = stats
        self.dialer = dialer
        self.agi_address = agi_address
        self.spawn = spawn  # runs a coroutine in the background, kept until it ends
        self.calls: dict[str, PreviewCall] = {}
        self._people: dict[str, str] = {}  # person's leg Uniqueid -> attempt id

    @staticmethod
    def is_preview(run: CampaignRun) -> bool:
        return run.row.mode == CampaignMode.PREVIEW.value

    async def step(self, runs: list[CampaignRun], agents: list[roster.AgentRow]) -> None:
        """Offer contacts to free ready agents, then start the calls that are due."""
        runs = [r for r in runs if self.is_preview(r) and may_dial(r.state)]
        if not runs or not agents:
            return
        wall = self.clock.wall()
        async with self.engine.begin() as conn:
            await self._offer_to_free(conn, runs, agents, wall)
            due = await desk.due_to_call(conn, [a.id for a in agents], wall)
        by_id = {a.id: a for a in agents}
        by_run = {r.id: r for r in runs}
        for row in due:
            if row.campaign_id in by_run and row.agent_id in by_id:
                await self._start(by_run[row.campaign_id], by_id[row.agent_id], row)

    async def _offer_to_free(self, conn: AsyncConnection, runs: list[CampaignRun], agents: list[roster.AgentRow],
                             wall: dt.datetime) -> None:
        """One offer to each ready agent with nothing open, from the first of their campaigns with a contact."""
        busy = await desk.busy_agents(conn, [a.id for a in agents])
        for agent in agents:
            if agent.state != roster.READY or agent.id in busy:
                continue
            for run in runs:
                if run.id in agent.campaigns and await self._offer(conn, run, agent, wall):
                    break

    async def _offer(self, conn: AsyncConnection, run: CampaignRun, agent: roster.AgentRow, wall: dt.datetime) -> bool:
        refused = None if run.row.on_reject == "skip" else await desk.next_rejected(conn, run.id, agent.id)
        if refused is not None:
            offered = await desk.offer(conn, agent.id, run.id, refused.id, refused.contact_id, wall,
                                       claimed_from=(ContactState.REJECTED_BY_OPERATOR.value,))
        else:
            claimed = await claim_due(conn, run.id, self.dialer.name, 1, as_dt(self.clock.now()))
            if not claimed:
                return False
            offered = await desk.offer(conn, agent.id, run.id, claimed[0].membership_id, claimed[0].contact_id, wall,
                                       claimed_from=(ContactState.DIALING.value,))
        if offered:
            log.info("campaign %s: contact offered to agent %s", run.row.name, agent.user)
        return offered is not None

    async def _start(self, run: CampaignRun, agent: roster.AgentRow, offer) -> None:
        """The pre-dial check right before dialing, the committed attempt, then the Originate."""
        now = self.clock.now()
        when = as_dt(now)
        async with self.engine.begin() as conn:
            started = await self._commit(conn, run, offer, when)
        if started is None:
            return
        attempt_id, number = started
        self.tracker.add(Call(attempt_id, run.id, offer.membership_id, number, sent_at=now))
        self.calls[attempt_id] = PreviewCall(attempt_id, agent.id, agent.interface)
        self.spawn(self._originate(run, agent, attempt_id, offer.contact_id, number))

    async def _commit(self, conn: AsyncConnection, run: CampaignRun, offer, when: dt.datetime):
        membership = offer.membership_id
        member = await store.claimed_row(conn, membership)
        phones, flag = (await store.contacts_for(conn, [offer.contact_id])).get(offer.contact_id, ({}, False))
        checked = check_contact(phones, flag, run.policy)
        if isinstance(checked, Dialable) and await store.dnc_numbers(conn, [checked.number]):
            checked = Result.DNC
        wall = self.clock.wall()
        if not await desk.to_dialing(conn, offer.id, membership, wall):
            return None
        if not isinstance(checked, Dialable):
            self.stats["predial"] += 1
            await db.record_predial(conn, membership, run.id, offer.contact_id, checked, "checked right before "
                                    "dialing (preview)", when, number=member.number, dialer=self.dialer.name)
            await desk.close_offer(conn, offer.id, wall)
            return None
        zones = checked.timezones or ((member.timezone,) if member.timezone else ())
        if not run.window.allowed_at(when, zones):
            self.stats["deferred"] += 1
            await release_claim(conn, membership, next_attempt_at=run.window.next_allowed(when, zones), now=when)
            await desk.close_offer(conn, offer.id, wall)
            return None
        attempt_id = await db.start_attempt(conn, membership, campaign_id=run.id, contact_id=offer.contact_id,
                                            dialer=self.dialer.name, number=checked.number,
                                            attempt_no=member.attempts + 1, now=when)
        await desk.set_attempt(conn, offer.id, attempt_id)
        return attempt_id, checked.number

    async def _originate(self, run: CampaignRun, agent: roster.AgentRow, attempt_id: str, contact_id: int,
                         number: str) -> None:
        row = run.row
        variables = {"__ATTEMPT_ID": attempt_id, "__CAMPAIGN_ID": row.id, "CONTACT_ID": contact_id,
                     "__DIALER_AGI": dialplan_value(self.agi_address),
                     "DIALER_DIAL": self.dialer.dial_template.format(number=number),
                     "DIALER_RING_TIMEOUT": max(MIN_RING_TIMEOUT_S, row.ring_timeout)}
        self.stats["originated"] += 1
        log.info("attempt %s: preview: ringing agent %s (%s) for %s", attempt_id, agent.user, agent.interface,
                 number, extra=attempt_extra(attempt_id))
        try:
            result = await self.ami.originate(
                channel=agent.interface, context=CONTEXT, exten="s", priority=1, timeout_ms=AGENT_ANSWER_S * 1000,
                caller_id=row.caller_id or None, channel_id=attempt_id, variables=variables,
                action_id=f"orig-{attempt_id}")
        except AMIError as exc:
            await self._unreached(agent.id, agent.user, attempt_id, f"Originate to the agent's phone failed: {exc}")
            return
        if not result.success:
            await self._unreached(agent.id, agent.user, attempt_id, f"the agent's phone {agent.interface} did not "
                                                                    f"answer (Reason {result.reason})")
            return
        call = self.calls.get(attempt_id)
        if call is not None:
            call.agent_up = True
        async with self.engine.begin() as conn:
            await db.mark_originated(conn, attempt_id, as_dt(self.clock.now()))

    async def _unreached(self, agent_id: int, user: str, attempt_id: str, why: str) -> None:
        """The person was never dialed: a service error (not charged, retried); the agent is paused.

        The agent channel's Hangup and the failed OriginateResponse may come in either order; the
        first to arrive decides, the other finds the call gone."""
        if attempt_id not in self.calls:
            return
        self._forget(attempt_id)
        self.stats["failed"] += 1
        log.warning("attempt %s: %s; agent %s paused", attempt_id, why, user, extra=attempt_extra(attempt_id))
        async with self.engine.begin() as conn:
            await db.finish_attempt(conn, attempt_id, Result.SERVICE_ERROR, ended_at=as_dt(self.clock.now()),
                                    detail=why)
            await desk.call_failed(conn, attempt_id, self.clock.wall())
            await roster.request(conn, agent_id, roster.PAUSED, roster.PHONE_UNANSWERED)

    def _forget(self, attempt_id: str) -> None:
        call = self.calls.pop(attempt_id, None)
        if call is not None and call.person:
            self._people.pop(call.person, None)
        self.tracker.remove(attempt_id)

    # --- AMI events ------------------------------------------------------------------------

    def on_dial_begin(self, event: dict) -> None:
        call = self.calls.get(attempt_id_from_uniqueid(event.get("Uniqueid") or ""))
        if call is not None and event.get("DestUniqueid"):
            call.person = event["DestUniqueid"]
            self._people[call.person] = call.attempt_id

    def on_dial_end(self, event: dict) -> None:
        call = self.calls.get(attempt_id_from_uniqueid(event.get("Uniqueid") or ""))
        status = event.get("DialStatus") or ""
        if call is None or not event.get("DestUniqueid") or status in ("", "RINGING", "PROGRESS", "PROCEEDING"):
            return
        call.dialstatus = status
        if status == "ANSWER":
            call.answered_at = self.clock.now()
            self.spawn(self._answered(call))

    async def _answered(self, call: PreviewCall) -> None:
        at = as_dt(call.answered_at)
        async with self.engine.begin() as conn:
            await db.mark_answered(conn, call.attempt_id, at)
            await db.set_routing(conn, call.attempt_id, Routing.AGENT_CONNECTED, agent=call.interface, now=at)
            await desk.connected(conn, call.attempt_id, call.interface, self.clock.wall())

    def on_hangup(self, event: dict) -> None:
        uniqueid = event.get("Uniqueid") or ""
        if uniqueid in self._people:
            call = self.calls.get(self._people[uniqueid])
            if call is not None:
                try:
                    call.cause = int(event.get("Cause") or 0) or None
                except ValueError:
                    pass
                call.cause_in.set()
            return
        call = self.calls.get(attempt_id_from_uniqueid(uniqueid))
        if call is not None and uniqueid == call.attempt_id:
            self.spawn(self._ended(call))

    async def _ended(self, call: PreviewCall) -> None:
        """The agent's channel is gone: the attempt's final result, then after-call work."""
        if call.dialstatus is None and call.answered_at is None and not call.agent_up:
            await self._unreached(call.agent_id, call.interface, call.attempt_id,
                                  f"the agent's phone {call.interface} did not answer")
            return
        if call.dialstatus in CAUSE_DECIDES and call.cause is None:
            try:
                await asyncio.wait_for(call.cause_in.wait(), CAUSE_GRACE_S)
            except TimeoutError:
                pass
        if call.dialstatus is None and call.answered_at is None:
            result = Result.SERVICE_ERROR  # the agent hung up before Dial() rang anyone
        else:
            result = dial_result(call.dialstatus, call.cause)
        now = self.clock.now()
        talk = int(now - call.answered_at) if call.answered_at is not None else None
        async with self.engine.begin() as conn:
            await db.finish_attempt(conn, call.attempt_id, result, ended_at=as_dt(now), hangup_cause=call.cause,
                                    talk_seconds=talk, detail=f"preview: DIALSTATUS={call.dialstatus or ''}")
            if result is Result.LIVE_ANSWER:
                await desk.completed(conn, call.attempt_id, self.clock.wall())
            else:
                await desk.call_failed(conn, call.attempt_id, self.clock.wall())
        log.info("attempt %s: preview call ended: %s", call.attempt_id, result.value,
                 extra=attempt_extra(call.attempt_id))
        self._forget(call.attempt_id)
