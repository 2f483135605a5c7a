"""What a metrics endpoint reads at scrape time besides its own counters (agi.metrics):

- ``OriginatorCollector``: this process's originator as it is now, the same figures it stores
  with its heartbeat (agi.originator.publish): pacing, lines, calls by stage, agents by state,
  and its AMI session;
- ``DatabaseCollector``: the installation as the database tells it (agi.live, the same snapshot
  `dialer top` shows): attempts finished by result, live answers and drops, drop rates, occupancy,
  contacts by state, each campaign's state on each dialer, originators' and FastAGI servers'
  heartbeats. The same figures whichever process is scraped: aggregate them with ``max``, not ``sum``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from agi.live import Snapshot
from agi.outcomes import CampaignState
from agi.rules.health import AGI_SERVER_FORGOTTEN_AFTER_S

if TYPE_CHECKING:
    from agi.originator.dialer import Originator


def _gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class OriginatorCollector:
    """The originator of this process, read at scrape time."""

    def __init__(self, originator: Originator) -> None:
        self.originator = originator

    def collect(self) -> Iterator[Metric]:
        o = self.originator
        ami = _gauge("dialer_ami_connected", "1 while the AMI session to Asterisk is logged in.", "dialer")
        ami.add_metric([o.name], 1.0 if o.ami.connected else 0.0)
        reconnects = CounterMetricFamily("dialer_ami_reconnects", "AMI logins after the first one.", labels=["dialer"])
        reconnects.add_metric([o.name], max(0, o.ami.connections - 1))
        yield from (ami, reconnects)
        publisher = getattr(o, "publisher", None)  # built by start()
        if publisher is None:
            return
        start = _gauge("dialer_pacing_calls_to_start", "Calls the pacing said to start at its last tick.",
                       "dialer", "campaign")
        level = _gauge("dialer_pacing_dial_level",
                       "Calls in flight (and to start) per ready agent; absent without ready agents or agents.",
                       "dialer", "campaign")
        in_use = _gauge("dialer_lines_in_use", "Lines the campaign's calls hold on this dialer.", "dialer", "campaign")
        allowed = _gauge("dialer_lines_allowed", "Lines the campaign may use on this dialer.", "dialer", "campaign")
        calls = _gauge("dialer_calls", "Calls by stage: ringing, detecting (AMD), ivr, waiting (agent queue).",
                       "dialer", "campaign", "stage")
        agents = _gauge("dialer_agents", "The campaign queue's agents logged in, by state: ready, in_call, acw, "
                        "paused.", "dialer", "campaign", "state")
        _dialer, campaigns = publisher.figures()
        for f in campaigns:
            run = o.campaigns.get(f.campaign_id)
            labels = [o.name, run.row.name if run else f"#{f.campaign_id}"]
            if f.calls_to_start is not None:
                start.add_metric(labels, f.calls_to_start)
            if f.dial_level is not None:
                level.add_metric(labels, f.dial_level)
            in_use.add_metric(labels, f.lines_in_use)
            allowed.add_metric(labels, f.lines_allowed)
            for stage, n in (("ringing", f.ringing), ("detecting", f.detecting), ("ivr", f.in_ivr),
                             ("waiting", f.waiting)):
                calls.add_metric(labels + [stage], n)
            for state, n in (("ready", f.agents_ready), ("in_call", f.agents_in_call), ("acw", f.agents_acw),
                             ("paused", f.agents_paused)):
                agents.add_metric(labels + [state], n)
        yield from (start, level, in_use, allowed, calls, agents)


class DatabaseCollector:
    """The installation from the database: ``snapshot`` is set (agi.live.read) right before each scrape."""

    def __init__(self) -> None:
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        if snap is None:
            return
        up = _gauge("dialer_database_up", "1 when the database answered and its schema is the newest.")
        up.add_metric([], 1.0 if snap.database.migrated else 0.0)
        yield up
        if not snap.database.migrated:
            return
        yield from self._campaigns(snap)
        yield from self._services(snap)

    @staticmethod
    def _campaigns(snap: Snapshot) -> Iterator[Metric]:
        finished = CounterMetricFamily("dialer_attempts_finished", "Attempts with a final result, by result "
                                       "(every process's writes, counted in the database).",
                                       labels=["campaign", "result"])
        open_ = _gauge("dialer_attempts_in_progress", "Attempts without a result yet.", "campaign")
        lives = CounterMetricFamily("dialer_live_answers", "Persons answered, as the drop rate counts them.",
                                    labels=["campaign"])
        dropped = CounterMetricFamily("dialer_drops", "Persons dropped (no agent in time), as the drop rate "
                                      "counts them.", labels=["campaign"])
        rate = _gauge("dialer_drop_rate_ratio", "Dropped / live answers over the regulatory window or the last "
                      "hour; absent without live answers.", "campaign", "window")
        cap = _gauge("dialer_drop_cap_ratio", "The campaign's drop-rate cap.", "campaign")
        occupancy = _gauge("dialer_agent_occupancy_ratio", "Agents' talk and wrap-up time / logged-in time this "
                           "hour; absent with no agent logged in.", "campaign")
        pace = _gauge("dialer_attempts_last_hour", "Attempts that used a line, started in the last hour.", "campaign")
        contacts = _gauge("dialer_contacts", "Contacts by state in the campaign.", "campaign", "state")
        states = _gauge("dialer_campaign_state", "1 for the campaign's state on each dialer, as a reader sees it.",
                        "campaign", "dialer", "state")
        for c in snap.campaigns:
            for result, n in (c.results or {}).items():
                finished.add_metric([c.name, result], n)
            if c.in_progress is not None:
                open_.add_metric([c.name], c.in_progress)
            if c.drops_total is not None:
                lives.add_metric([c.name], c.drops_total.live)
                dropped.add_metric([c.name], c.drops_total.dropped)
            for window, r in (("regulatory", c.drops_window), ("last_hour", c.drops_hour)):
                if r.pct is not None:
                    rate.add_metric([c.name, window], r.pct / 100.0)
            cap.add_metric([c.name], c.drop_cap_pct / 100.0)
            if c.occupancy_pct is not None:
                occupancy.add_metric([c.name], c.occupancy_pct / 100.0)
            pace.add_metric([c.name], c.attempts_last_hour)
            for state, n in c.contacts.items():
                contacts.add_metric([c.name, state], n)
            for d in c.dialers:
                for s in CampaignState:
                    states.add_metric([c.name, d.dialer, s.value], 1.0 if d.state is s else 0.0)
        yield from (finished, open_, lives, dropped, rate, cap, occupancy, pace, contacts, states)

    @staticmethod
    def _services(snap: Snapshot) -> Iterator[Metric]:
        o_up = _gauge("dialer_originator_up", "1 while the originator's heartbeat is fresh (and it has not stopped).",
                      "dialer")
        o_ami = _gauge("dialer_originator_ami_connected", "The originator's AMI session as its heartbeat reported it.",
                       "dialer")
        o_age = _gauge("dialer_originator_heartbeat_age_seconds", "Seconds since the originator's last heartbeat.",
                       "dialer")
        s_up = _gauge("dialer_agi_server_up", "1 while the FastAGI server's heartbeat is fresh.", "address")
        s_sessions = _gauge("dialer_agi_server_sessions", "Live sessions the FastAGI server reported.", "address")
        for o in snap.originators:
            o_up.add_metric([o.name], 1.0 if o.beating else 0.0)
            o_ami.add_metric([o.name], 1.0 if o.beating and o.ami_connected else 0.0)
            if o.beat_age_s is not None:
                o_age.add_metric([o.name], o.beat_age_s)
        for s in snap.agi_servers:
            if s.beat_age_s is None or s.beat_age_s > AGI_SERVER_FORGOTTEN_AFTER_S:
                continue  # a retired address
            s_up.add_metric([s.address], 1.0 if s.alive else 0.0)
            s_sessions.add_metric([s.address], s.live_sessions if s.alive else 0)
        yield from (o_up, o_ami, o_age, s_up, s_sessions)
