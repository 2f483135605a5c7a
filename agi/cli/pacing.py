"""`dialer pacing simulate`: what each pacing mode and ratio would give a campaign, before dialing.

The campaign's agents, lines, drop cap and call mix come from its own history
(agi.pacing_history) or from the command line; the simulator (agi.pacing_sim) runs a few
seeded shifts per mode and the medians are printed.
"""

from __future__ import annotations

import datetime as dt

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agi.cli._util import console, fail, json_option, print_json, print_table, run_conn
from agi.pacing_history import campaign_history
from agi.pacing_sim import Profile, compare_modes
from agi.rules.pacing import DEFAULT_DROP_CAP_PCT, DEFAULT_DROP_WINDOW_HOURS, DEFAULT_TARGET_SHARE

AMD_SECONDS = 2.0  # the simulator's detection time before a person asks for an agent
DEFAULTS = {  # used when neither the campaign's history nor the command line gives a value
    "machine_rate": 5.0, "busy_rate": 10.0, "fail_rate": 10.0, "acw": 15.0, "ring_timeout": 25,
    "drop_timeout": 2, "drop_cap": DEFAULT_DROP_CAP_PCT, "drop_window_hours": DEFAULT_DROP_WINDOW_HOURS,
    "lines": None, "cps": 10.0, "ratio": 1.0,
}


@click.group("pacing")
def pacing() -> None:
    """Pacing: try modes and ratios on a simulated shift before dialing."""


def _percent(name: str):
    def check(ctx, param, value):
        if value is not None and not 0 <= value <= 100:
            raise click.BadParameter(f"{value:g} is not a percentage (0-100)", param_hint=name)
        return value
    return check


def _ratios(ctx, param, value: str) -> list[float]:
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give ratios separated by commas, e.g. 1,1.5,2") from None
    if not out or any(r <= 0 for r in out):
        raise click.BadParameter(f"{value!r}: give positive ratios separated by commas, e.g. 1,1.5,2")
    return out


@pacing.command("simulate")
@click.option("--campaign", "campaign_ref", metavar="CAMPAIGN",
              help="Take settings and the call mix from this campaign's history (id or name).")
@click.option("--history-days", type=click.IntRange(min=1), default=30, show_default=True,
              help="With --campaign: measure the attempts dialed in the last DAYS days.")
@click.option("--agents", type=click.IntRange(min=1), help="Agents logged in.")
@click.option("--lines", type=click.IntRange(min=1), help="Lines for the campaign (default: 5 per agent).")
@click.option("--cps", type=click.FloatRange(min=0.1), help="Calls per second.")
@click.option("--person-rate", type=float, callback=_percent("--person-rate"), metavar="PCT",
              help="Calls answered by a person, % of calls placed.")
@click.option("--machine-rate", type=float, callback=_percent("--machine-rate"), metavar="PCT",
              help="Calls answered by a machine or fax, %.")
@click.option("--busy-rate", type=float, callback=_percent("--busy-rate"), metavar="PCT", help="Busy, %.")
@click.option("--fail-rate", type=float, callback=_percent("--fail-rate"), metavar="PCT",
              help="Rejected, disconnected, failed, %.")
@click.option("--talk", type=click.FloatRange(min=1), metavar="SECONDS", help="Mean talk time with an agent.")
@click.option("--acw", type=click.FloatRange(min=0), metavar="SECONDS", help="Mean after-call work.")
@click.option("--ring-timeout", type=click.IntRange(min=15), metavar="SECONDS", help="Ring timeout.")
@click.option("--drop-timeout", type=click.IntRange(min=1), metavar="SECONDS",
              help="Seconds a live answer waits for an agent.")
@click.option("--drop-cap", type=float, callback=_percent("--drop-cap"), metavar="PCT",
              help="Drop-rate cap, % of live answers.")
@click.option("--drop-target", type=float, callback=_percent("--drop-target"), metavar="PCT",
              help=f"Drop rate predictive steers toward (default {DEFAULT_TARGET_SHARE:.0%} of the cap).")
@click.option("--drop-window-hours", type=click.FloatRange(min=1), metavar="H",
              help="Window of the drop rate (720 = 30 days, US; 24 = UK).")
@click.option("--ratio", type=click.FloatRange(min=0.1), help="Predictive's ratio (used until it has history).")
@click.option("--ratios", default="1,1.5,2,2.5", show_default=True, callback=_ratios,
              help="Progressive ratios to try.")
@click.option("--hours", type=click.FloatRange(min=0.5, max=24), default=4.0, show_default=True,
              help="Length of each simulated shift.")
@click.option("--seeds", type=click.IntRange(min=1, max=50), default=5, show_default=True,
              help="Shifts per mode (medians are printed).")
@json_option
@click.pass_obj
def simulate(obj, campaign_ref, history_days, as_json, ratios, hours, seeds, **given) -> None:
    """Expected occupancy, drop rate, connects per agent-hour and lines used for each mode and ratio.

    Every value comes from the command line, else from the campaign's own history (--campaign),
    else from a default; the table of inputs says which.
    """
    history = None
    if campaign_ref:
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=history_days)
        history = run_conn(obj.settings.db_url, lambda conn: campaign_history(conn, campaign_ref, since))
    inputs = resolve_inputs(given, history)
    profile = Profile(
        name=history.campaign if history else "given", agents=round(inputs["agents"][0]),
        p_human=inputs["person_rate"][0] / 100, p_machine=inputs["machine_rate"][0] / 100,
        p_busy=inputs["busy_rate"][0] / 100, p_fail=inputs["fail_rate"][0] / 100,
        talk_mean=inputs["talk"][0], acw=(inputs["acw"][0] * 2 / 3, inputs["acw"][0] * 4 / 3),
        ring=inputs["ring"][0], ring_timeout=inputs["ring_timeout"][0],
        drop_after=AMD_SECONDS + inputs["drop_timeout"][0], shift=hours * 3600.0,
        lines=int(inputs["lines"][0]), cps=inputs["cps"][0], drop_cap_pct=inputs["drop_cap"][0],
        drop_target_pct=inputs["drop_target"][0], drop_window_hours=inputs["drop_window_hours"][0],
        ratio=inputs["ratio"][0],
    )
    out = console(stderr=True)
    with Progress(TextColumn("Simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("shifts"),
                  TimeElapsedColumn(), console=out, transient=True, disable=as_json) as bar:
        task = bar.add_task("sim", total=(len(ratios) + 1) * seeds)
        results = compare_modes(profile, ratios, seeds, progress=lambda done, _t: bar.update(task, completed=done))
    if as_json:
        print_json({"campaign": history.campaign if history else None, "hours": hours, "seeds": seeds,
                    "inputs": {k: {"value": v, "source": src} for k, (v, src) in inputs.items()},
                    "modes": [r.as_dict() for r in results]})
        return
    print_table(f"Inputs{f' ({history.campaign})' if history else ''}", ["input", "value", "from"],
                [[k.replace("_", " "), _show(k, v), src] for k, (v, src) in inputs.items()])
    cap = inputs["drop_cap"][0]
    print_table(
        f"Expected over a {hours:g} h shift (median of {seeds} seeds; agents all logged in)",
        ["mode", "ratio", "occupancy", "drop rate", "drop, worst seed", "worst hour", "connects/agent-h",
         "lines p95", "lines max"],
        [[r.mode, f"{r.ratio:g}", f"{r.occupancy:.1%}", f"{r.drop_rate:.2%}",
          f"{r.drop_rate_worst:.2%}" + (" OVER CAP" if r.over_cap else ""), f"{r.worst_hour_drop_rate:.2%}",
          f"{r.connects_per_agent_hour:.1f}", r.lines_p95, r.lines_max] for r in results],
    )
    click.echo(f"Occupancy = (talk + after-call work) / logged-in time; drop rate = dropped / live answers "
               f"(cap {cap:g}%). Progressive over-dialing stops at the cap; predictive steers under it.")
    if any(r.lines_max >= profile.lines for r in results):
        click.echo(f"Some modes used all {profile.lines} lines: more lines may raise their occupancy.")


INPUTS = ("agents", "person_rate", "machine_rate", "busy_rate", "fail_rate", "talk", "acw", "lines", "cps", "ratio",
          "ring_timeout", "drop_timeout", "drop_cap", "drop_target", "drop_window_hours")  # fmt: skip
LACKS = {"agents": "agent time", "talk": "calls connected to an agent"}  # else: "calls placed"


def resolve_inputs(given: dict, history) -> dict[str, tuple]:
    """Each simulator input as (value, where it came from): the command line, the campaign's
    settings or history, or a default. Fails, saying what to give, when a value has no source."""
    measured, settings, note = _from_history(given, history)
    out = {key: _resolve(key, given, measured, settings, note, history) for key in INPUTS}
    if out["lines"] is None:
        out["lines"] = (5 * round(out["agents"][0]), "default: 5 per agent")
    _check_rates_and_agents(out)
    ring = measured.get("ring", (15.0, 25.0))
    top = float(out["ring_timeout"][0])
    out["ring"] = ((min(ring[0], top), min(ring[1], top)), note if "ring" in measured else "default")
    if out["drop_cap"][0] and out["drop_target"][0] is not None and out["drop_target"][0] > out["drop_cap"][0]:
        fail(f"--drop-target {out['drop_target'][0]:g}% is above the cap ({out['drop_cap'][0]:g}%)")
    return out


def _from_history(given: dict, h) -> tuple[dict, dict, str]:
    """What the campaign's history measured, its pacing settings, and the note saying so."""
    if h is None:
        return {}, {}, ""
    if not h.has_agents and given.get("agents") is None:
        fail(f"campaign {h.campaign!r} has no agent queue (it dials broadcast: its lines set its pace); "
             f"give --agents to see what agents would get")
    measured: dict = {}
    if h.dials:
        measured.update(person_rate=100 * h.person_rate, machine_rate=100 * h.machine_rate,
                        busy_rate=100 * h.busy_rate, fail_rate=100 * h.fail_rate)
    maybe = {"talk": h.talk_mean, "acw": h.acw_mean, "agents": h.agents, "ring": h.ring_range()}
    measured.update({k: v for k, v in maybe.items() if v is not None})
    settings = {"lines": h.lines, "cps": h.cps, "ring_timeout": h.ring_timeout, "drop_timeout": h.drop_timeout,
                "drop_cap": h.drop_cap_pct, "drop_window_hours": h.drop_window_hours, "ratio": h.ratio}
    return measured, settings, f"history, {h.dials} calls"


def _resolve(key: str, given: dict, measured: dict, settings: dict, note: str, h) -> tuple | None:
    """One input from the first source that has it; None for lines (5 per agent, once agents are known)."""
    if given.get(key) is not None:
        return (given[key], "given")
    if key in measured:
        return (measured[key], note if key != "agents" else f"agent time, {h.hours_worked} h")
    if key in settings:
        return (settings[key], "campaign")
    if key == "drop_target":
        return (None, "default")
    if key == "lines":
        return None
    if key in DEFAULTS:
        return (DEFAULTS[key], "default")
    lacks = LACKS.get(key, "calls placed")
    where = f"campaign {h.campaign!r} has no {lacks} in the days measured" if h else "no --campaign given"
    fail(f"--{key.replace('_', '-')} is needed: {where}")


def _check_rates_and_agents(out: dict) -> None:
    rates = sum(out[k][0] for k in ("person_rate", "machine_rate", "busy_rate", "fail_rate"))
    if rates > 100:
        fail(f"person, machine, busy and fail rates add up to {rates:g}% (over 100%): lower one of them")
    if out["agents"][0] < 0.5:
        fail("fewer than one agent on average: give --agents")


def _show(key: str, value) -> str:
    if value is None:
        return f"{DEFAULT_TARGET_SHARE:.0%} of the cap" if key == "drop_target" else ""
    if key.endswith("_rate") or key in ("drop_cap", "drop_target"):
        return f"{value:.1f}%"
    if key == "ring":
        return f"{value[0]:.0f}-{value[1]:.0f} s (answered calls)"
    if key in ("talk", "acw", "ring_timeout", "drop_timeout"):
        return f"{value:.0f} s"
    if key == "agents":
        return f"{value:.1f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"
    return f"{value:g}"


def register(main: click.Group) -> None:
    main.add_command(pacing)
