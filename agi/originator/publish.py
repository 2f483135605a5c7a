"""One originator's live figures, from what it holds in memory: each campaign's state and why, pacing,
lines, calls by stage and agents by state, and its AMI session.

Built once per heartbeat and stored with it (agi.db.live_stats), where `dialer top`, `dialer status`
and every metrics endpoint read them (agi.live); this process's own metrics endpoint shows the same
figures built at scrape time (agi.metrics.collectors).
"""

from __future__ import annotations

from agi.ami.client import AMIClient
from agi.db.live_stats import CampaignFigures, DialerFigures
from agi.originator.calls import CallStages, CallTracker
from agi.originator.campaigns import AgiServers, CampaignRun, Campaigns
from agi.originator.clock import Clock
from agi.originator.dial import pacing_mode
from agi.outcomes import CampaignState
from agi.rules.lifecycle import state_reason


def running_reason(run: CampaignRun, calls: CallStages, *, ami_connected: bool, nothing_due: bool,
                   dialer_lines_free: int) -> str | None:
    """Why a running campaign is not starting calls now, if it is not: None when it may."""
    if not ami_connected:
        return "not dialing: AMI disconnected"
    if nothing_due:
        return "nothing due now"
    if run.line_limited_since is not None:
        wanted = f"; it would use about {run.lines_wanted}" if run.lines_wanted else ""
        return f"line-limited: agents wait for its {run.lines_here} lines{wanted}"
    if calls.lines >= run.lines_here or dialer_lines_free <= 0:
        return "all its lines in use"
    if run.row.queue_name and run.agents.now.available == 0 and not run.calls_to_start:
        return "no agent ready"
    return None


class Publisher:
    """The figures of this originator now (``figures()``), for its heartbeat and its metrics."""

    def __init__(self, ami: AMIClient, clock: Clock, tracker: CallTracker, runs: dict[int, CampaignRun],
                 lifecycle: Campaigns, agi: AgiServers, *, dialer_lines: int) -> None:
        self.ami = ami
        self.clock = clock
        self.tracker = tracker
        self.runs = runs
        self.lifecycle = lifecycle
        self.agi = agi
        self.dialer_lines = dialer_lines

    def figures(self) -> tuple[DialerFigures, list[CampaignFigures]]:
        now = self.clock.now()
        in_use = len(self.tracker.active())
        connected = self.ami.connected
        dialer = DialerFigures(ami_connected=connected, ami_reconnects=max(0, self.ami.connections - 1),
                               lines_in_use=in_use, agi_address=self.agi.address)
        return dialer, [self.campaign(run, now, connected=connected, dialer_lines_free=self.dialer_lines - in_use)
                        for run in self.runs.values()]

    def campaign(self, run: CampaignRun, now: float, *, connected: bool, dialer_lines_free: int) -> CampaignFigures:
        calls = self.tracker.stages(run.id, now)
        agents = run.agents.now
        running = run.state is CampaignState.RUNNING
        why = state_reason(self.lifecycle.view(run, now), run.state)
        if run.state is CampaignState.PAUSED_NO_AGI_SERVER:
            why = f"{why} at {self.agi.address}"
        if running:
            nothing_due = self.clock.elapsed() < run.nothing_due_until
            why = running_reason(run, calls, ami_connected=connected, nothing_due=nothing_due,
                                 dialer_lines_free=dialer_lines_free) or why
        return CampaignFigures(
            campaign_id=run.id, state=run.state.value, reason=why, mode=pacing_mode(run.row).value,
            dial_level=run.dial_level if running else None,
            calls_to_start=run.calls_to_start if running else None,
            lines_in_use=calls.lines, lines_allowed=run.lines_here, ringing=len(calls.ringing_ages),
            detecting=calls.in_detection, in_ivr=calls.in_ivr, waiting=calls.waiting,
            agents_logged_in=agents.logged_in, agents_ready=agents.available, agents_in_call=agents.in_call,
            agents_acw=agents.in_acw, agents_paused=agents.paused,
        )
