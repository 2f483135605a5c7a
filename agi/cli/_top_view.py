"""One frame of `dialer top`, drawn from an agi.live snapshot: fits 80 columns, wider is fine.

Per campaign: its state, drop rate over the regulatory window and the last hour (red over the cap),
occupancy this hour, attempts in the last hour, contacts left; then a row per dialer: state and why,
lines, dial level, calls to start, calls by stage, agents by state. Then the FastAGI servers and the
originators with their heartbeats. Nothing is computed here but the layout.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from agi.live import CampaignView, DropRate, OnDialer, Snapshot
from agi.outcomes import CampaignState as S
from agi.outcomes import ContactState as C

# the word a supervisor reads for each state on a dialer, and its colour
STATE_WORDS = {
    S.RUNNING: ("running", "green"), S.PAUSED_NO_AGENTS: ("paused", "yellow"),
    S.PAUSED_NO_AGI_SERVER: ("waiting", "yellow"), S.SCHEDULED: ("scheduled", "cyan"),
    S.UNSCHEDULED: ("unscheduled", "dim"), S.STOPPED: ("stopped", "dim"), S.STOPPED_BY_ADMIN: ("stopped", "dim"),
    S.STOPPED_BY_DIALER: ("stopped", "red"), S.COMPLETED: ("completed", "dim"),
}
IN_CALL = (C.DIALING.value, C.IN_CALL.value, C.WAITING_AGENT.value)
DASH = "–"


def _num(value: float | int | None, fmt: str = "{}") -> str:
    return DASH if value is None else fmt.format(value)


def _pct(value: float | None) -> str:
    return _num(value, "{:.2f}%")


def state_text(state: S, reason: str) -> Text:
    word, style = STATE_WORDS.get(state, (state.value, ""))
    return Text.assemble((word, style), f": {reason}" if reason else "")


def _drop(c: CampaignView, rate: DropRate, where: str) -> Text:
    style = "bold red" if c.over_cap(rate) else ""
    return Text.assemble((_pct(rate.pct), style), f" {where} ({rate.dropped}/{rate.live})")


def campaign_lines(c: CampaignView) -> list[RenderableType]:
    modes = {d.figures.mode for d in c.dialers if d.figures is not None}
    mode = " ".join(sorted(modes)) if modes else c.mode
    word, style = STATE_WORDS.get(c.state, (c.state.value, ""))
    k = c.contacts
    return [
        Text.assemble((c.name, "bold"), f"  {mode}  ", (c.state.label, style)),
        Text.assemble("  drop rate ", _drop(c, c.drops_window, f"over {c.drop_window_hours} h"), ", ",
                      _drop(c, c.drops_hour, "last hour"), f"; cap {c.drop_cap_pct:.2f}%"),
        Text(f"  occupancy {_num(c.occupancy_pct, '{:.0f}%')} this hour · {c.attempts_last_hour} attempts in the "
             f"last hour"),
        Text(f"  contacts {k.get(C.PENDING.value, 0)} pending · {k.get(C.RETRY_SCHEDULED.value, 0)} retry later · "
             f"{sum(k.get(s, 0) for s in IN_CALL)} in call · {k.get(C.DONE.value, 0)} done · "
             f"{k.get(C.SKIPPED.value, 0)} skipped"),
    ]


def dialers_table(dialers: tuple[OnDialer, ...]) -> Table:
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("  dialer", no_wrap=True)
    for name in ("lines", "level", "start", "ring", "AMD", "IVR", "wait", "ready", "call", "ACW", "pause"):
        table.add_column(name, justify="right", no_wrap=True)
    for d in dialers:
        f = d.figures
        if f is None:
            table.add_row(f"  {d.dialer}", *([DASH] * 11))
            continue
        table.add_row(f"  {d.dialer}", f"{f.lines_in_use}/{f.lines_allowed}", _num(f.dial_level, "{:.2f}"),
                      _num(f.calls_to_start), str(f.ringing), str(f.detecting), str(f.in_ivr), str(f.waiting),
                      str(f.agents_ready), str(f.agents_in_call), str(f.agents_acw), str(f.agents_paused))
    return table


def campaign_block(c: CampaignView) -> Group:
    parts: list[RenderableType] = campaign_lines(c)
    for d in c.dialers:
        parts.append(Text.assemble(f"  {d.dialer}  ", state_text(d.state, d.reason)))
    if c.dialers:
        parts.append(dialers_table(c.dialers))
    else:
        parts.append(Text("  not assigned to any dialer (`dialer campaign assign`)", style="yellow"))
    return Group(*parts, Text(""))


def services(snap: Snapshot) -> Group:
    parts: list[RenderableType] = [Text("FastAGI servers", style="bold")]
    for s in snap.agi_servers:
        if s.alive:
            state = Text.assemble(("alive", "green"), f" · {s.live_sessions} sessions · beat {s.beat_age_s:.0f} s ago")
        elif s.stopped_at is not None:
            state = Text(f"stopped at {s.stopped_at:%H:%M:%S} UTC", style="dim")
        else:
            state = Text(f"not beating for {_num(s.beat_age_s, '{:.0f}')} s", style="red")
        parts.append(Text.assemble(f"  {s.address}  ", state, f" · {s.hostname} pid {_num(s.pid)}"))
    if not snap.agi_servers:
        parts.append(Text("  none has run yet (`dialer serve`)", style="yellow"))
    parts.append(Text("Originators", style="bold"))
    for o in snap.originators:
        last = DASH if o.last_heartbeat is None else f"{o.last_heartbeat:%H:%M:%S} UTC"
        if o.beating:
            ami = Text("AMI connected", style="green") if o.ami_connected else Text("AMI disconnected", style="red")
            state = Text.assemble(("beating", "green"), f" · last {last} ({o.beat_age_s:.0f} s ago) · ", ami,
                                  f" · {o.lines_in_use}/{o.lines} lines")
        elif o.stopped_at is not None:
            state = Text(f"stopped at {o.stopped_at:%H:%M:%S} UTC", style="dim")
        elif o.last_heartbeat is None:
            state = Text("never started", style="dim")
        else:
            state = Text(f"not beating for {o.beat_age_s:.0f} s (last {last})", style="red")
        parts.append(Text.assemble(f"  {o.name}  ", state))
    if not snap.originators:
        parts.append(Text("  none registered (`dialer dialers add`)", style="yellow"))
    return Group(*parts)


def frame(snap: Snapshot, *, interval: float | None = None) -> Group:
    db = snap.database
    every = f" · every {interval:g} s · q quits" if interval else ""
    if db.migrated:
        head = Text.assemble(("dialer top", "bold"), f" · {snap.now:%Y-%m-%d %H:%M:%S} UTC · ",
                             ("database ok", "green"), every)
    else:
        why = db.error if not db.reachable else f"schema at {db.revision or 'nothing'}: run `dialer db upgrade`"
        head = Text.assemble(("dialer top", "bold"), f" · {snap.now:%Y-%m-%d %H:%M:%S} UTC · ",
                             (f"database down: {why}", "bold red"), every)
        return Group(head)
    parts: list[RenderableType] = [head, Text("")]
    parts += [campaign_block(c) for c in snap.campaigns]
    if not snap.campaigns:
        parts.append(Text("No campaign running or scheduled (--all shows every campaign).", style="dim"))
        parts.append(Text(""))
    parts.append(services(snap))
    return Group(*parts)
