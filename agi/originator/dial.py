"""The dial loop of one campaign: pace, claim, check, commit, then queue each call to be originated.

Each tick, for a campaign that may dial: the pure pacing function (agi.rules.pacing) says how
many calls to start within the free lines and what the calls-per-second limits let go within
the next tick (agi.originator.sender); that many due contacts are claimed; each is checked again
right before dialing (DNC list, calling window, allowed countries, the number not already in a
call); the attempt rows, pre-dial results and released claims are committed together, one
transaction of the writer (agi.db.writer: one round trip on PostgreSQL); only then is each
Originate queued to the sender, which sends it when the limits allow.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agi.db import attempt_writes as w
from agi.db.claim import claim_due
from agi.db.models import new_attempt_id
from agi.db.writer import AttemptWriter
from agi.metrics import db_write
from agi.originator import store
from agi.originator.calls import Call, CallStages, CallTracker
from agi.originator.campaigns import CampaignRun
from agi.originator.clock import Clock, as_dt
from agi.originator.reconciler import MAX_CALL_S
from agi.originator.sender import Sender
from agi.outcomes import CampaignMode, Result
from agi.rules.pacing import PacingState, calls_to_start, dial_level, line_limited, lines_needed
from agi.rules.predial import Dialable, check_contact

log = logging.getLogger("agi.originator.dial")

SAME_NUMBER_RETRY_S = 30.0  # a contact whose number is in a call already is due again this much later
LINE_LIMITED_CLEARS_S = 60.0  # call-time seconds with a line to spare before "line-limited" ends
NOTHING_DUE_WAIT_S = 1.0  # real seconds before claiming again for a campaign that had nothing due
START_RETRY_FOR_S = 30.0  # the batch's writes are given up after this (its claims: the reconciler's)


def pacing_mode(row) -> CampaignMode:
    """The campaign's pacing mode in effect: broadcast when it has no agent queue."""
    return CampaignMode(row.mode) if row.queue_name else CampaignMode.BROADCAST  # nothing to pace against


def pacing_state(run: CampaignRun, calls: CallStages, *, now: float, lines_free: int, cps_budget: int) -> PacingState:
    """What agi.rules.pacing needs to know of the campaign at ``now`` (call time)."""
    agents = run.agents.now
    row = run.row
    return PacingState(
        mode=pacing_mode(row), now=now, lines_free=lines_free, cps_budget=cps_budget, ringing_ages=calls.ringing_ages,
        detecting=calls.detecting, queue_waiting=calls.waiting,
        agents_logged_in=agents.logged_in, agents_available=agents.available,
        agents_in_call=agents.in_call, agents_in_acw=agents.in_acw,
        acw_ages=run.agents.acw_ages(now),
        ratio=row.pacing_ratio, drop_timeout=row.drop_timeout,
        stats=run.history.stats(now), dropped_window=run.dropped_window,
        live_window=run.live_window, drop_cap_pct=row.drop_cap_pct,
        drop_target_pct=row.drop_target_pct, drop_window_hours=row.drop_window_hours,
    )


@dataclass(frozen=True)
class ToDial:
    attempt_id: str
    claim: object  # the claimed row (membership_id, contact_id, ...)
    number: str


@dataclass(frozen=True)
class Checked:
    """What the checks right before dialing read for a claimed batch."""

    checks: dict  # membership id -> Dialable or the pre-dial result (agi.rules.predial)
    listed: set[str]  # numbers on the DNC list now
    busy: set[str]  # numbers in a call now (of any dialer)


class DialLoop:
    def __init__(self, engine: AsyncEngine, writer: AttemptWriter, clock: Clock, tracker: CallTracker, stats: dict,
                 *, dialer: store.DialerRow, sender: Sender, horizon: float) -> None:
        self.engine = engine
        self.writer = writer
        self.clock = clock
        self.tracker = tracker
        self.stats = stats
        self.dialer = dialer
        self.sender = sender  # sends the Originates at the pace of the CPS limits
        self.horizon = horizon  # real seconds of calls claimed at once: a tick's worth

    async def dial(self, run: CampaignRun) -> None:
        """Start the calls the campaign's pacing allows now."""
        if self.clock.elapsed() < run.nothing_due_until:
            return
        now = self.clock.now()
        calls = self.tracker.stages(run.id, now)
        lines_free = min(self.dialer.lines - len(self.tracker.active()), run.lines_here - calls.lines)
        cps_budget = self.sender.budget(run, self.horizon)
        # paced even with no line or CPS token free (it then says 0): the live view shows the answer
        state = pacing_state(run, calls, now=now, lines_free=max(0, lines_free), cps_budget=cps_budget)
        self._watch_lines(run, state, calls.lines)
        n = calls_to_start(state)
        run.calls_to_start, run.dial_level = n, dial_level(state, n)
        if n <= 0:
            return
        when = as_dt(now)
        with db_write("claim"):  # the claim and what the checks read, one transaction
            async with self.engine.begin() as conn:
                claimed = await claim_due(conn, run.id, self.dialer.name, n, when)
                checked = await self._read_checks(conn, run, claimed, when) if claimed else None
        if not claimed:
            run.nothing_due_until = self.clock.elapsed() + NOTHING_DUE_WAIT_S
            return
        await self._start(run, claimed, checked, now)

    def _watch_lines(self, run: CampaignRun, state, lines_in_use: int) -> None:
        """Say once when agents wait for lines, with the lines the campaign's history says it would
        use; the episode ends after a minute with a line to spare."""
        if line_limited(state):
            run.lines_wanted = lines_needed(state.stats, state.agents_logged_in)
            if run.line_limited_since is None:
                run.line_limited_since = state.now
                wanted = (f"; from its history it would use about {run.lines_wanted} lines"
                          if run.lines_wanted else "")
                log.warning("campaign %s is line-limited: %d lines in use of %d allowed here (campaign %d, "
                            "dialer %d) while %d agent(s) wait%s. Raise `dialer campaign assign --lines` / "
                            "`dialer dialers add --lines` (README: sizing lines)", run.row.name, lines_in_use,
                            min(run.lines_here, self.dialer.lines), run.lines_here, self.dialer.lines,
                            state.agents_available, wanted)
            run.line_limited_at = state.now
        elif run.line_limited_since is not None and state.now - run.line_limited_at > LINE_LIMITED_CLEARS_S:
            run.line_limited_since = run.lines_wanted = None

    async def _read_checks(self, conn: AsyncConnection, run: CampaignRun, claimed: list,
                           when: dt.datetime) -> Checked:
        """The pre-dial checks of the batch, and what they need read right before dialing."""
        contacts = await store.contacts_for(conn, [c.contact_id for c in claimed])
        checks = {}
        for c in claimed:
            phones, flag = contacts.get(c.contact_id, ({}, False))
            checks[c.membership_id] = check_contact(phones, flag, run.policy)
        dialable = [d.number for d in checks.values() if isinstance(d, Dialable)]
        # the DNC list, again, right before dialing (a number added mid-campaign is never dialed)
        listed = await store.dnc_numbers(conn, dialable)
        # a number already ringing or talking (another contact, campaign or dialer) is not dialed again
        # at the same time: two rows sharing a household phone must not ring it twice at once
        busy = {c.number for c in self.tracker.active()} | await store.numbers_in_call(
            conn, dialable, when - dt.timedelta(seconds=MAX_CALL_S))
        return Checked(checks, listed, busy)

    async def _start(self, run: CampaignRun, claimed: list, checked: Checked, now: float) -> None:
        """One write per claimed contact (an attempt, a pre-dial result or the claim given back),
        committed together; then each started call is tracked and queued to be originated."""
        when = as_dt(now)
        writes, to_dial = [], []
        busy = set(checked.busy)
        for c in claimed:
            verdict = checked.checks[c.membership_id]
            if isinstance(verdict, Dialable) and verdict.number in checked.listed:
                verdict = Result.DNC
            write, started = self._one(run, c, verdict, busy, when)
            writes.append(write)
            if started is not None:
                to_dial.append(started)
                busy.add(started.number)
        with db_write("start_attempts"):
            await self.writer.run_all(writes, retry_for=START_RETRY_FOR_S)
        # committed: every attempt row exists before its Originate is sent
        for d in to_dial:
            call = self.tracker.add(Call(d.attempt_id, run.id, d.claim.membership_id, d.number, sent_at=now))
            run.history.placed(now)
            self.sender.put(run, call, d.claim.contact_id)

    def _one(self, run: CampaignRun, c, checked, busy: set[str], when: dt.datetime):
        """One claimed contact: its write (a pre-dial result, the claim released, or a started
        attempt) and, for a started one, the call to originate."""
        if not isinstance(checked, Dialable):
            self.stats["predial"] += 1
            return functools.partial(w.record_predial, c.membership_id, run.id, c.contact_id, checked,
                                     "checked right before dialing", when, number=c.number,
                                     dialer=self.dialer.name), None
        zones = checked.timezones or ((c.timezone,) if c.timezone else ())
        if not run.window.allowed_at(when, zones):
            self.stats["deferred"] += 1
            later = run.window.next_allowed(when, zones)
            if later is None:
                log.info("campaign %s: %s never inside its calling window; left for the admin",
                         run.row.name, checked.number)
            return functools.partial(w.release_claim, c.membership_id, next_attempt_at=later, now=when), None
        if checked.number in busy:
            self.stats["deferred"] += 1
            return functools.partial(w.release_claim, c.membership_id, now=when,
                                     next_attempt_at=when + dt.timedelta(seconds=SAME_NUMBER_RETRY_S)), None
        attempt_id = new_attempt_id()  # made here: a write sent again inserts the same row (idempotent)
        return functools.partial(
            w.start_attempt, c.membership_id, campaign_id=run.id, contact_id=c.contact_id,
            dialer=self.dialer.name, number=checked.number, attempt_no=c.attempts + 1, now=when,
            attempt_id=attempt_id), ToDial(attempt_id, c, checked.number)
