"""The pacers the simulator compares: our pure pacing function and baselines from their authors' source.

A pacer is called once per pacing tick with the ``PacingState`` the originator would build and a
``SimView`` (history, profile, answer ring times); it returns how many calls to start now.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

from agi.outcomes import CampaignMode
from agi.pacing_sim.model import Pacer, SimView
from agi.rules.pacing import PacingState, PredictiveTuning, calls_to_start, predictive


class OurMode:
    """Our pure pacing function, unchanged."""

    def __init__(self, mode: CampaignMode, name: str | None = None, tuning: PredictiveTuning | None = None):
        self.mode = mode
        self.name = name or mode.value
        self.tuning = tuning
        self.needs_ages = mode is CampaignMode.PREDICTIVE

    def __call__(self, state: PacingState, view: SimView) -> int:
        if self.tuning is not None and self.mode is CampaignMode.PREDICTIVE:
            return _clamp(predictive(state, self.tuning), state)
        return calls_to_start(state)


class VicidialAdaptive:
    """VICIdial's adaptive predictive dialing (dial method ADAPT_HARD_LIMIT), as its source does it.

    From ``AST_VDauto_dial.pl`` (one loop every 2.5 s): calls to place = round(dial level x
    dialable agents) - the campaign's calls in SENT, RINGING, LIVE, XFER or CLOSER state, i.e. the
    calls ringing, waiting for an agent *and those already with an agent*. Dialable agents are the
    non-paused agents (READY, QUEUE, INCALL) less the "dead" ones (INCALL with no call: after-call
    work), or with "available only tally" the READY ones, in which case the calls with agents are
    added back to the goal. Each loop also samples ready agents, waiting calls and all logged-in
    agents; ``AST_VDadapt.pl`` averages the last 20 samples and every 15 s multiplies the level by
    (1 + (ready - waiting) / agents) (intensity 0), caps it at the maximum level (3) and floors it
    at 1; with drop counts refreshed every 60 s it halves the level when over half of the last
    minute's calls (over 20) dropped and sets it to 1.0 when today's drops passed the cap (of the
    answered calls, once today has over 50 calls).
    """

    needs_ages = False
    LOOP = 2.5  # AST_VDauto_dial.pl: default --delay, seconds per loop
    ADAPT_EVERY = 15.0  # AST_VDadapt.pl: "Calculate and update Dial level every 15 seconds"
    DROPS_EVERY = 60.0  # AST_VDadapt.pl: "Update Drop counter every 60 seconds"
    SAMPLES = 20  # AST_VDauto_dial.pl: the differential averages the last 20 loops

    def __init__(self, available_only: bool, max_level: float = 3.0):
        self.available_only = available_only
        self.max_level = max_level
        self.name = "vicidial-avail" if available_only else "vicidial-all"
        self.level = 1.0
        self.samples: deque = deque(maxlen=self.SAMPLES)  # (ready, waiting, logged-in agents)
        self.next_loop = 0.0
        self.next_adapt = self.ADAPT_EVERY
        self.next_drops = 0.0
        self.minute: deque = deque()  # (t, dials, drops) increments seen in the last minute
        self._seen = (0, 0)  # (placed_total, dropped_total) already in ``minute``
        self.calls_one = self.drops_one = 0  # last minute, as of the last drop refresh
        self.calls_today = self.drops_today = self.answers_today = 0

    def __call__(self, state: PacingState, view: SimView) -> int:
        now = state.now
        h = view.history
        placed, dropped = h.placed_total - self._seen[0], h.dropped_total - self._seen[1]
        if placed or dropped:
            self.minute.append((now, placed, dropped))
            self._seen = (h.placed_total, h.dropped_total)
        while self.minute and self.minute[0][0] <= now - 60.0:
            self.minute.popleft()
        if now < self.next_loop:
            return 0
        while self.next_loop <= now:
            self.next_loop += self.LOOP
        self.samples.append((state.agents_available, state.queue_waiting, state.agents_logged_in))
        if now >= self.next_drops:
            self.next_drops = now + self.DROPS_EVERY
            self.calls_one = sum(m[1] for m in self.minute)
            self.drops_one = sum(m[2] for m in self.minute)
            self.calls_today, self.drops_today, self.answers_today = h.placed_total, h.dropped_total, h.live_total
        if now >= self.next_adapt:
            self.next_adapt = now + self.ADAPT_EVERY
            self._adapt(state)
        dialable = state.agents_available
        if not self.available_only:
            dialable += state.agents_in_call  # INCALL with a live call; after-call work is "dead"
        goal = round(self.level * dialable)
        if self.available_only:
            goal += state.agents_in_call  # calls already with agents (XFER) added back
        existing = state.in_flight + state.agents_in_call  # SENT/RINGING/LIVE + XFER
        return _clamp(goal - existing, state)

    def _adapt(self, state: PacingState) -> None:
        n = len(self.samples)
        ready = sum(s[0] for s in self.samples) / n
        waiting = sum(s[1] for s in self.samples) / n
        agents = sum(s[2] for s in self.samples) / n
        if agents > 0:
            self.level = min(self.max_level, self.level * (1.0 + (ready - waiting) / agents))
        self.level = max(1.0, self.level)
        if self.calls_one > 20 and self.drops_one > self.calls_one / 2:
            self.level /= 2
        cap = state.drop_cap_pct / 100.0
        if self.calls_today > 50 and self.answers_today and self.drops_today > cap * self.answers_today:
            self.level = 1.0  # ADAPT_HARD_LIMIT
        self.level = max(1.0, self.level)


class IssabelPredictor:
    """Issabel's call-center predictor, as its source does it (``CampaignProcess.class.php``,
    ``Predictor.class.php``, ``Campania.class.php``).

    Every 3 s: free agents (queue members neither paused nor in use: after-call work included, as
    Asterisk reports a member in wrap-up time as not in use) + agents in a call whose call is over
    with probability >= 0.97 (exponential with the mean talk time, at call age + mean time to
    answer of the last 20 answered calls, 8 s until there are 20) once the campaign has 10
    completed calls - callers waiting; then minus the calls still waiting for an answer; then, with
    ``dialer.overcommit`` on, divided by the answer ratio of the last 30 minutes (answered calls /
    finished calls, at least 10), floored at 0.20.
    """

    needs_ages = True
    name = "issabel"
    LOOP = 3.0  # CampaignProcess: INTERVALO_REVISION_CAMPANIAS
    MIN_SAMPLES = 10  # CampaignProcess: MIN_MUESTRAS completed calls before predicting
    ANSWER_SAMPLES = 20  # Campania: NUM_LLAMADAS_HISTORIAL_CONTESTADA
    ANSWER_DEFAULT = 8.0  # ConfigDB: dialer.tiempo_contestar
    ASR_FLOOR = 0.20  # CampaignProcess: $ASR_safe floor

    def __init__(self, service_probability: float = 0.97, overcommit: bool = True):
        self.service_probability = service_probability  # ConfigDB: dialer.qos default 0.97
        self.overcommit = overcommit  # ConfigDB: dialer.overcommit (off by default; on here)
        self.next_loop = 0.0

    def __call__(self, state: PacingState, view: SimView) -> int:
        now = state.now
        if now < self.next_loop:
            return 0
        while self.next_loop <= now:
            self.next_loop += self.LOOP
        stats = view.history.stats(now)
        likely = 0
        if len(stats.talk_times) >= self.MIN_SAMPLES and stats.talk_mean > 0:
            rings = list(view.answer_rings)
            t_answer = (sum(rings) + self.ANSWER_DEFAULT * (self.ANSWER_SAMPLES - len(rings))) / self.ANSWER_SAMPLES
            # P(call over by age + t_answer) = 1 - exp(-(age + t_answer) / mean) >= qos
            need = -stats.talk_mean * math.log(1.0 - self.service_probability) - t_answer
            likely = sum(1 for a in state.talk_ages if a >= need)
        waiting = state.queue_waiting + state.detecting
        n = max(0, state.agents_available + state.agents_in_acw + likely - waiting)
        if n > 0:
            n = max(0, n - len(state.ringing_ages))
        if n > 0 and self.overcommit and stats.resolved >= 10 and stats.humans + stats.machines > 0:
            n = round(n / max(self.ASR_FLOOR, stats.answer_rate))
        return _clamp(n, state)


def _clamp(n: int, state: PacingState) -> int:
    return max(0, min(int(n), state.limit))


def make_pacers() -> list[Callable[[], Pacer]]:
    """Factories for every strategy the benchmark compares (fresh state per run)."""
    return [
        lambda: OurMode(CampaignMode.PREDICTIVE),
        lambda: OurMode(CampaignMode.PROGRESSIVE),
        lambda: VicidialAdaptive(available_only=False),
        lambda: VicidialAdaptive(available_only=True),
        lambda: IssabelPredictor(),
    ]
