"""The discrete-event run behind ``simulate``: one campaign's shift(s) on a simulated clock.

``_Shift`` holds the shift's state (agents, calls ringing, in detection or waiting for an agent,
lines and calls per second in use, the drop window, the measured day's figures). Its loop takes, in
time order, pacing ticks (every ``tick`` s the pacer asks for calls) and call events, one method
per event kind. The random draws come in a fixed order (each agent's breaks first, then each call's
outcome and ring time, each talk and each after-call work as they happen), so a seed is a shift.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque

from agi.outcomes import CampaignMode
from agi.pacing_sim.model import Pacer, Profile, ShiftResult, SimView
from agi.rules.pacing import PacingHistory, PacingState

_FREE, _TALK, _ACW, _BREAK = 0, 1, 2, 3
# event kinds
_UNANSWERED, _ANSWER, _VERDICT, _DROP_CHECK, _TALK_END, _ACW_END, _BREAK_END = range(7)
DAY = 86400.0


def simulate(profile: Profile, pacer: Pacer, seed: int, tick: float = 1.0) -> ShiftResult:
    """Run the campaign's shift(s); returns the figures of the last one."""
    return _Shift(profile, pacer, seed, tick).run()


class _Shift:
    """A campaign's shift(s): ``days`` shifts one a day, the last one measured."""

    def __init__(self, profile: Profile, pacer: Pacer, seed: int, tick: float):
        p = self.p = profile
        self.pacer, self.seed, self.tick = pacer, seed, tick
        self.rng = random.Random(seed)
        self.history = PacingHistory()
        self.view = SimView(history=self.history, profile=p)
        self.days = max(1, p.days)
        self.m0 = (self.days - 1) * DAY  # the measured shift: the last day's
        self.m1 = self.m0 + p.shift
        self.window = p.drop_window_hours * 3600.0
        self.needs_ages = getattr(pacer, "needs_ages", False)
        self.mode = getattr(pacer, "mode", CampaignMode.PREDICTIVE)
        self.mu = math.log(p.talk_mean) - p.talk_sigma**2 / 2
        self.c_fail = p.p_fail  # cumulative outcome probabilities of a call placed
        self.c_busy = self.c_fail + p.p_busy
        self.c_human = self.c_busy + p.p_human
        self.c_machine = self.c_human + p.p_machine
        self._agents(p.agents)
        self._calls()
        self._figures_so_far()
        self.day = 0
        self.next_tick = 0.0
        self.handlers = {
            _UNANSWERED: self._unanswered, _ANSWER: self._answer, _VERDICT: self._verdict,
            _DROP_CHECK: self._drop_check, _TALK_END: self._talk_end, _ACW_END: self._acw_end,
            _BREAK_END: self._break_end,
        }  # fmt: skip

    def _agents(self, n: int) -> None:
        self.n_agents = n
        self.state = [_FREE] * n
        self.since = [0.0] * n  # when the agent entered its current state
        self.talk_len = [0.0] * n
        self.free_agents: list[int] = list(range(n))  # stack of free agent ids
        self.free_since = [0.0] * n
        self.breaks_due = [
            sorted(d * DAY + self.rng.uniform(0.5, 7.5) * 3600 for d in range(self.days) for _ in range(self.p.breaks))
            for _ in range(n)
        ]
        self.paused = 0

    def _calls(self) -> None:
        self.events: list = []
        self.seq = 0
        self.call_id = 0
        self.ringing: dict[int, float] = {}  # call id -> originate time
        self.detecting = 0
        self.queue: deque = deque()  # (call id, answer time)
        self.queued_ids: set[int] = set()
        self.answer_time: dict[int, float] = {}
        self.channels = 0  # lines in use
        self.recent_dials: deque = deque()  # originate times in the last second (CPS limit)
        self.window_lives: deque = deque()  # times persons answered, within the drop window
        self.window_drops: deque = deque()  # times persons were dropped, within the drop window

    def _figures_so_far(self) -> None:
        self.busy_time = 0.0
        self.break_time = 0.0
        self.idle_total = 0.0
        self.connects = 0
        self.dials = self.persons = self.drops = 0
        self.max_channels = 0
        self.max_cps = 0
        self.lines_seen = [0] * (self.p.lines + 1)  # seconds of the measured shift with n lines in use
        minutes = int(self.p.shift // 60) + 2
        self.minute_persons = [0] * minutes
        self.minute_drops = [0] * minutes

    # --- the loop --------------------------------------------------------------------------------

    def run(self) -> ShiftResult:
        events = self.events
        while True:
            t_ev = events[0][0] if events else math.inf
            if self.next_tick <= t_ev and self.next_tick < math.inf:
                if self.day * DAY + self.p.shift <= self.next_tick:
                    self._end_day()
                else:
                    self._pace()
                continue
            if not events:
                break
            now, _, kind, data = heapq.heappop(events)
            may_end = self.handlers[kind](now, data)
            if may_end and self.next_tick == math.inf and not self.ringing and not self.detecting and not self.queue:
                break
        return self._figures()

    def _end_day(self) -> None:
        """The day's shift is over: no more ticks until the next day's (none after the last)."""
        self.day += 1
        self.next_tick = self.day * DAY if self.day < self.days else math.inf
        if self.day < self.days:
            for a in self.free_agents:
                self.free_since[a] = self.next_tick

    def _measured(self, t: float) -> bool:
        return self.m0 <= t < self.m1

    def _overlap(self, a: float, b: float) -> float:
        return max(0.0, min(b, self.m1) - max(a, self.m0))

    def _push(self, t: float, kind: int, data) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, data))

    # --- the pacing tick ---------------------------------------------------------------------------

    def _pace(self) -> None:
        """A pacing tick: the pacer sees the campaign as the originator would and calls are placed."""
        p = self.p
        now = self.next_tick
        self.next_tick += self.tick
        if self._measured(now):
            self.lines_seen[min(self.channels, p.lines)] += 1
        recent = self.recent_dials
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        for q in (self.window_lives, self.window_drops):
            while q and q[0] < now - self.window:
                q.popleft()
        budget = int(p.cps) - len(recent)
        lines_free = p.lines - self.channels
        if budget <= 0 or lines_free <= 0:
            return
        st = self._pacing_state(now, budget, lines_free)
        self.view.agents_paused = self.paused
        n = self.pacer(st, self.view)
        if n < 0 or n > st.limit:
            raise AssertionError(f"{self.pacer.name} asked for {n} calls, limit {st.limit}")
        if n:
            recent.extend([now] * n)
            self.max_cps = max(self.max_cps, len(recent))
        for _ in range(n):
            self._originate(now)
        self.max_channels = max(self.max_channels, self.channels)

    def _pacing_state(self, now: float, budget: int, lines_free: int) -> PacingState:
        p = self.p
        in_call, in_acw, talk_ages, acw_ages = self._agents_busy(now)
        return PacingState(
            mode=self.mode,
            now=now,
            lines_free=lines_free,
            cps_budget=budget,
            ringing_ages=tuple(now - t0 for t0 in self.ringing.values()),
            detecting=self.detecting,
            queue_waiting=len(self.queue),
            agents_logged_in=self.n_agents,
            agents_available=len(self.free_agents),
            agents_in_call=in_call,
            agents_in_acw=in_acw,
            talk_ages=talk_ages,
            acw_ages=acw_ages,
            ratio=p.ratio,
            drop_timeout=p.drop_after - p.amd_human,
            stats=self.history.stats(now),
            dropped_window=len(self.window_drops),
            live_window=len(self.window_lives),
            drop_cap_pct=p.drop_cap_pct,
            drop_target_pct=p.drop_target_pct,
            drop_window_hours=p.drop_window_hours,
        )

    def _agents_busy(self, now: float) -> tuple[int, int, tuple, tuple]:
        """Agents talking and in after-call work, and how long each has been (if the pacer looks)."""
        if not self.needs_ages:
            return self.state.count(_TALK), self.state.count(_ACW), (), ()
        talk, acw = [], []
        for s, t0 in zip(self.state, self.since):
            if s == _TALK:
                talk.append(now - t0)
            elif s == _ACW:
                acw.append(now - t0)
        return len(talk), len(acw), tuple(talk), tuple(acw)

    def _originate(self, now: float) -> None:
        """Place one call; its outcome (and ring time, if answered) is drawn now."""
        p = self.p
        self.call_id += 1
        cid = self.call_id
        if self._measured(now):
            self.dials += 1
        self.channels += 1
        self.history.placed(now)
        u = self.rng.random()
        if u < self.c_fail:
            self._push(now + p.fail_release, _UNANSWERED, cid)
        elif u < self.c_busy:
            self._push(now + p.busy_release, _UNANSWERED, cid)
        elif u < self.c_machine:
            ring = min(p.ring_timeout, self.rng.uniform(*p.ring))
            self._push(now + ring, _ANSWER, (cid, u < self.c_human))
        else:  # nobody answers: it rings until the ring timeout
            self._push(now + p.ring_timeout, _UNANSWERED, cid)
        self.ringing[cid] = now

    # --- call and agent events: each returns whether the run may end after it ---------------------
    # (a machine's verdict and a break's end leave that to the next event)

    def _unanswered(self, now: float, cid: int) -> bool:
        t0 = self.ringing.pop(cid)
        self.channels -= 1
        self.history.unanswered(now, now - t0)
        return True

    def _answer(self, now: float, data: tuple) -> bool:
        cid, human = data
        t0 = self.ringing.pop(cid)
        self.detecting += 1
        self.answer_time[cid] = now
        self.view.answer_rings.append(now - t0)
        self._push(now + (self.p.amd_human if human else self.p.amd_machine), _VERDICT, (cid, human, now - t0))
        return True

    def _verdict(self, now: float, data: tuple) -> bool:
        """AMD's verdict: a machine is hung up; a person goes to a free agent or waits for one."""
        cid, human, ring = data
        self.detecting -= 1
        ans = self.answer_time.pop(cid)
        self.history.answered(now, ring, human)
        if not human:
            self.channels -= 1
            return False
        if self._measured(now):
            self.persons += 1
            self.minute_persons[int((now - self.m0) // 60)] += 1
        self.window_lives.append(now)
        self.history.to_agent(now, now - ans)
        if self.free_agents:
            self._connect(now)
        else:
            self.queue.append((cid, ans))
            self.queued_ids.add(cid)
            self._push(ans + self.p.drop_after, _DROP_CHECK, cid)
        return True

    def _drop_check(self, now: float, cid: int) -> bool:
        """A person still waiting ``drop_after`` s after answering is dropped."""
        if cid in self.queued_ids:
            self.queued_ids.discard(cid)
            for i, (c, _a) in enumerate(self.queue):
                if c == cid:
                    del self.queue[i]
                    break
            self.channels -= 1
            self.history.dropped(now)
            self.window_drops.append(now)
            if self._measured(now):
                self.drops += 1
                self.minute_drops[int((now - self.m0) // 60)] += 1
        return True

    def _talk_end(self, now: float, a: int) -> bool:
        self.channels -= 1
        self.busy_time += self._overlap(self.since[a], now)
        self.state[a] = _ACW
        self.since[a] = now
        self._push(now + self.rng.uniform(*self.p.acw), _ACW_END, a)
        return True

    def _acw_end(self, now: float, a: int) -> bool:
        self.busy_time += self._overlap(self.since[a], now)
        self.history.agent_freed(now, self.talk_len[a], now - self.since[a])
        self._agent_free(now, a)
        return True

    def _break_end(self, now: float, a: int) -> bool:
        self.paused -= 1
        self._agent_free(now, a)
        return False

    def _connect(self, now: float) -> None:
        """A free agent takes the person; the talk time is drawn now."""
        a = self.free_agents.pop()
        if self._measured(now):
            self.idle_total += now - max(self.free_since[a], self.m0)
            self.connects += 1
        self.history.connected(now)
        self.state[a] = _TALK
        self.since[a] = now
        talk = self.rng.lognormvariate(self.mu, self.p.talk_sigma)
        self.talk_len[a] = talk
        self._push(now + talk, _TALK_END, a)

    def _agent_free(self, now: float, a: int) -> None:
        """The agent takes a break now if one is due, else the waiting persons (or waits)."""
        due = self.breaks_due[a]
        if due and due[0] <= now:
            due.pop(0)
            self.state[a] = _BREAK
            self.paused += 1
            end = now + self.p.break_len
            self.break_time += self._overlap(now, end)
            self._push(end, _BREAK_END, a)
            return
        self.state[a] = _FREE
        self.free_since[a] = now
        self.free_agents.append(a)
        while self.queue and self.free_agents:
            call, _ans = self.queue.popleft()
            self.queued_ids.discard(call)
            self._connect(now)

    # --- the figures -------------------------------------------------------------------------------

    def _figures(self) -> ShiftResult:
        p = self.p
        for a in range(self.n_agents):  # agents still busy at the end of the shift
            if self.state[a] in (_TALK, _ACW):
                self.busy_time += self._overlap(self.since[a], self.m1)
        logged = self.n_agents * p.shift - self.break_time
        connects, persons, drops = self.connects, self.persons, self.drops
        return ShiftResult(
            profile=p.name,
            pacer=self.pacer.name,
            seed=self.seed,
            occupancy=self.busy_time / logged if logged else 0.0,
            drop_rate=drops / persons if persons else 0.0,
            worst_hour_drop_rate=_worst_hour(self.minute_persons, self.minute_drops),
            connects_per_agent_hour=connects / (logged / 3600.0) if logged else 0.0,
            idle_wait=self.idle_total / connects if connects else 0.0,
            dials=self.dials,
            persons=persons,
            drops=drops,
            max_lines_used=self.max_channels,
            max_cps_seen=self.max_cps,
            p95_lines_used=_percentile(self.lines_seen, 0.95),
            window_hours=p.drop_window_hours,
        )


def _worst_hour(minute_persons: list[int], minute_drops: list[int]) -> float:
    """The worst drop rate over rolling 60-minute windows that had at least one person."""
    worst = 0.0
    wp = wd = 0
    for m in range(len(minute_persons)):
        wp += minute_persons[m]
        wd += minute_drops[m]
        if m >= 60:
            wp -= minute_persons[m - 60]
            wd -= minute_drops[m - 60]
        if m >= 59 and wp:
            worst = max(worst, wd / wp)
    return worst


def _percentile(histogram: list[int], q: float) -> int:
    """The q-quantile of a histogram (index = value, entry = how often)."""
    total = sum(histogram)
    if not total:
        return 0
    need = q * total
    seen = 0
    for value, n in enumerate(histogram):
        seen += n
        if seen >= need:
            return value
    return len(histogram) - 1
