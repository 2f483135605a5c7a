"""README "A campaign, end to end", run as written: the command block is read from README.md and every
``dialer ...`` line runs as the real ``dialer`` process, against ``dialer sim`` (the simulated Asterisk),
on both databases. The campaign must place calls and the summary must add up.

Only what must differ is substituted: the database URL, the AMI address (the simulator's port), the
FastAGI port (a free one, by environment), the dates, days, time zone (and, when no US/CA zone is in
working hours now, the allowed countries) so the schedule and the calling window are open now, and the
attempt id of ``dialer dispose``. leads.csv and dnc.txt are written here. An edit of the README that
breaks the example breaks this test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agi.outcomes import DIAL_RESULTS, FINISHED, Disposition, Result, Routing
from agi.rules.predial import normalize, number_timezones

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

README = Path(__file__).resolve().parent.parent / "README.md"
DIALER = str(Path(sys.executable).parent / "dialer")
LONG_RUNNING = {"serve", "originate", "run"}  # run until SIGTERM (README: "SIGTERM lets calls finish")
SPEED = 20.0  # the simulator divides ring, detection, prompts and talk by this
AGENTS = 4  # simulated agents logged in to the README's queue
GOOD_ROWS = 24


def readme_commands() -> list[list[str]]:
    """The shell block of README "A campaign, end to end", one argv per command (continuations joined)."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## A campaign, end to end", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README 'A campaign, end to end' has no ```sh block"
    joined = block.group(1).replace("\\\n", " ")
    return [argv for argv in (shlex.split(line, comments=True) for line in joined.splitlines()) if argv]


# --- where it is working hours now ----------------------------------------------------------------


@dataclass(frozen=True)
class Place:
    """Numbers that ring in one zone; ``country`` for --countries when it is not the README's."""

    zone: str
    country: str
    number: str  # format with {i}: a national (US/CA) or +international number


# One zone per number (phonenumbers' prefix data), spread so that one is always in 10:00-15:00.
PLACES = (
    Place("America/New_York", "US", "(212) 555-01{i:02d}"),
    Place("America/Halifax", "CA", "(902) 555-01{i:02d}"),
    Place("America/Chicago", "US", "(312) 555-01{i:02d}"),
    Place("America/Denver", "US", "(303) 555-01{i:02d}"),
    Place("America/Phoenix", "US", "(602) 555-01{i:02d}"),
    Place("America/Los_Angeles", "US", "(415) 555-01{i:02d}"),
    Place("Pacific/Honolulu", "US", "(808) 555-01{i:02d}"),
    Place("Australia/Sydney", "AU", "+61 2 5550 01{i:02d}"),
    Place("Asia/Tokyo", "JP", "+81 3 5555 01{i:02d}"),
    Place("Asia/Calcutta", "IN", "+91 22 5555 01{i:02d}"),
    Place("Asia/Dubai", "AE", "+971 4 555 01{i:02d}"),
    Place("Europe/London", "GB", "+44 20 7946 01{i:02d}"),
)
README_COUNTRIES = {"US", "CA"}
ZONES = {p.zone: ZoneInfo(p.zone) for p in PLACES}  # held: zoneinfo's own cache keeps only 8


def working_hours_place(now: dt.datetime) -> Place:
    """A place where it is 10:00-15:00 now (inside the README's 09:00-17:00 hours and 09:00-20:00
    window, with time to run), a US or Canadian one when there is one."""
    fits = [p for p in PLACES if 10 <= now.astimezone(ZONES[p.zone]).hour < 15]
    assert fits, f"no place in PLACES is in working hours at {now:%H:%M} UTC: extend the table"
    return min(fits, key=lambda p: p.country not in README_COUNTRIES)


def test_some_place_is_always_in_working_hours_and_numbers_ring_there():
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for step in range(0, 366 * 24 * 2):  # every half hour of a year, DST changes included
        working_hours_place(start + dt.timedelta(minutes=30 * step))
    for place in PLACES:
        assert number_timezones(normalize(place.number.format(i=1), "US")) == (place.zone,)


# --- the run --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Shell:
    """Runs the README's commands as a person's shell would: exports, `&` jobs, foreground commands."""

    def __init__(self, cwd: Path, substitute) -> None:
        self.cwd = cwd
        self.substitute = substitute
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DIALER_")}
        self.jobs: dict[str, subprocess.Popen] = {}
        self.outputs: list[str] = []

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        argv = self.substitute(argv)
        done = subprocess.run([DIALER, *argv[1:]], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=120, stdin=subprocess.DEVNULL)
        self.outputs.append(f"$ {shlex.join(argv)}\n{done.stdout}{done.stderr}")
        if check:
            assert done.returncode == 0, self.log()
        return done

    def start(self, argv: list[str]) -> subprocess.Popen:
        argv = self.substitute(argv)
        log = open(self.cwd / f"{argv[1]}.log", "w")
        proc = subprocess.Popen([DIALER, *argv[1:]], cwd=self.cwd, env=self.env, stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
        self.jobs[argv[1]] = proc
        self.outputs.append(f"$ {shlex.join(argv)} &  (pid {proc.pid}, log {log.name})")
        return proc

    def json(self, *args: str) -> dict | list:
        return json.loads(self.run(["dialer", *args, "--json"]).stdout)

    def log(self) -> str:
        tails = [f"--- {p.name}\n" + p.read_text()[-3000:] for p in sorted(self.cwd.glob("*.log"))]
        return "\n".join(self.outputs[-12:] + tails)

    def stop(self, name: str, timeout: float = 60.0) -> int:
        proc = self.jobs.pop(name)
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout)

    def kill_all(self) -> None:
        for proc in self.jobs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def write_leads(cwd: Path, place: Place) -> dict[str, int]:
    """leads.csv with GOOD_ROWS contacts to call and one of each pre-dial case; dnc.txt lists one of them.

    Returns the pre-dial results the summary must show.
    """
    numbers = [place.number.format(i=i) for i in range(1, GOOD_ROWS + 3)]
    rows = ["id,first_name,last_name,cell,home,dnc"]
    rows += [f"L{i},First{i},Last{i},{n},,no" for i, n in enumerate(numbers[:GOOD_ROWS], 1)]
    rows += [
        f"L90,Dana,Nophone,,{numbers[GOOD_ROWS]},no",  # only a home phone: the campaign dials cell
        f"L91,Eli,Flagged,{numbers[GOOD_ROWS + 1]},,yes",  # the contact's DNC flag
        "L92,Fay,Letters,(212) 555-CALL,,no",  # letters: invalid record
        "L93,Gil,Abroad,+33 1 42 68 53 00,,no",  # France: not an allowed country
    ]
    (cwd / "leads.csv").write_text("\n".join(rows) + "\n")
    # one contact to call is on the DNC list: found by the check right before dialing
    (cwd / "dnc.txt").write_text(normalize(numbers[0], "US") + "\n")
    return {Result.NO_PHONE.value: 1, Result.DNC.value: 2, Result.INVALID_NUMBER.value: 1,
            Result.FORBIDDEN_DESTINATION.value: 1}


def settled(shell: Shell) -> bool:
    """Every contact to call had its call and none is in progress."""
    contacts = shell.json("campaign", "show", "spring")["contacts"]
    open_states = ("pending", "dialing", "in_call", "waiting_agent")
    return not any(contacts[s] for s in open_states) and shell.json("report", "summary", "--campaign", "spring")[
        "in_progress"] == 0


def test_the_readme_campaign_end_to_end_places_calls_and_the_summary_adds_up(db_url, tmp_path):
    commands = readme_commands()
    now = dt.datetime.now(dt.timezone.utc)
    place = working_hours_place(now)
    local = now.astimezone(ZoneInfo(place.zone))
    expected_predial = write_leads(tmp_path, place)
    agi_port = free_port()
    exports = dict(kv.split("=", 1) for argv in commands if argv[0] == "export" for kv in argv[1:])

    # the simulated Asterisk, with the README's AMI user and secret and agents in its queue
    queue = commands_option(commands, "campaign", "--queue")
    sim_log = tmp_path / "sim.log"
    record = tmp_path / "sim-record.jsonl"
    sim = subprocess.Popen(
        [DIALER, "sim", "--ami-port", "0", "--ami-user", exports["DIALER_AMI_USER"],
         "--ami-secret", exports["DIALER_AMI_SECRET"], "--agi", f"127.0.0.1:{agi_port}", "--speed", str(SPEED),
         "--agents", f"{queue}={AGENTS}", "--seed", "7", "--record", str(record)],
        cwd=tmp_path, stdout=sim_log.open("w"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ami_port = wait_for_ami_port(sim, sim_log)
    attempt_id: list[str] = []

    def substitute(argv: list[str]) -> list[str]:
        out = list(argv)
        for i, word in enumerate(out):
            before = out[i - 1] if i else ""
            if word.startswith("DIALER_DB_URL="):
                out[i] = f"DIALER_DB_URL={db_url}"
            elif word.startswith("DIALER_AMI_HOST="):
                out[i] = "DIALER_AMI_HOST=127.0.0.1"
            elif before == "--ami":
                out[i] = f"127.0.0.1:{ami_port}"
            elif before == "--start":
                out[i] = local.date().isoformat()
            elif before == "--stop":
                out[i] = (local.date() + dt.timedelta(days=19)).isoformat()
            elif before == "--from":  # the call log's dates are UTC
                out[i] = now.date().isoformat() if re.fullmatch(r"\d{4}-\d\d-\d\d", word) else word
            elif before == "--tz":
                out[i] = place.zone
            elif before == "--days" and local.weekday() >= 5:
                out[i] = local.strftime("%a").lower()  # the README calls on weekdays; today is not one
            elif before == "--countries" and place.country not in README_COUNTRIES:
                out[i] = place.country
            elif word == "ATTEMPT_ID":
                out[i] = attempt_id[0]
        return out

    shell = Shell(tmp_path, substitute)
    try:
        for argv in commands:
            if argv[0] == "export":
                shell.env.update(kv.split("=", 1) for kv in substitute(argv)[1:])
                shell.env["DIALER_AGI_BIND"] = f"127.0.0.1:{agi_port}"  # not 4573: tests run side by side
                continue
            assert argv[0] == "dialer", f"README command {argv} is not a dialer command"
            if argv[-1] == "&":
                shell.start(argv[:-1])
                if argv[1] == "serve":
                    wait_for_port(agi_port, shell)
            elif argv[1] in LONG_RUNNING:
                shell.start(argv)
                deadline = time.monotonic() + 240
                while not settled(shell):
                    assert time.monotonic() < deadline, "the campaign did not work through its contacts\n" + shell.log()
                    assert all(p.poll() is None for p in shell.jobs.values()), shell.log()
                    time.sleep(1.0)
                assert shell.stop(argv[1]) == 0, shell.log()  # SIGTERM: stops dialing, exits cleanly
            else:
                if argv[1] == "dispose":
                    live = shell.json("report", "calls", "--campaign", "spring", "--result", "live_answer")
                    assert live, "no live answer to dispose\n" + shell.log()
                    attempt_id.append(live[0]["attempt_id"])
                shell.run(argv)
        for name in list(shell.jobs):
            assert shell.stop(name) == 0, shell.log()
        summary = shell.json("report", "summary", "--campaign", "spring")
        retry = shell.json("campaign", "show", "spring-retry")
        disposed = shell.json("report", "calls", "--campaign", "spring", "--result", "call_back")
    finally:
        shell.kill_all()
        sim.send_signal(signal.SIGTERM)
        sim.wait(60)

    cells = summary["cells"]
    originated = [json.loads(line) for line in record.read_text().splitlines() if line.strip()]
    # calls were placed: one attempt per Originate the simulated Asterisk saw, each with a dial result
    assert cells[FINISHED] > 0 and cells[FINISHED] == len(originated), shell.log()
    assert summary["in_progress"] == 0
    assert cells[FINISHED] == sum(cells[r.value] for r in DIAL_RESULTS)  # Rejected is outside the rows
    assert cells[FINISHED] == GOOD_ROWS - 1  # every contact to call but the one on dnc.txt, once each
    assert {code: cells[code] for code in expected_predial} == expected_predial
    # the third row counts live answers: routing and dispositions never exceed them
    live = cells[Result.LIVE_ANSWER.value]
    assert live > 0
    assert cells[Routing.AGENT_CONNECTED.value] + cells[Routing.DROPPED.value] <= live
    assert sum(cells[d.value] for d in (Disposition.OPT_OUT, Disposition.INTERESTED, Disposition.NOT_INTERESTED,
                                        Disposition.CALL_BACK)) <= live
    drop = summary["drop_rate"]
    assert (drop["live_answers"], drop["dropped"]) == (live, cells[Routing.DROPPED.value])
    # `report calls --result dropped,busy --csv calls.csv`: one row per such attempt
    with open(tmp_path / "calls.csv", newline="") as fh:
        exported = list(fh)[1:]
    assert len(exported) == cells[Result.BUSY.value] + cells[Routing.DROPPED.value]
    # `campaign create spring-retry --from spring --last-result no_answer,busy`
    copied = sum(retry["contacts"].values())
    assert copied == cells[Result.NO_ANSWER.value] + cells[Result.BUSY.value]
    # `dispose ATTEMPT_ID call_back --callback-at '+2h'`
    assert attempt_id[0] in {c["attempt_id"] for c in disposed}  # with the IVR's call-backs, if any


def commands_option(commands: list[list[str]], group: str, option: str) -> str:
    for argv in commands:
        if argv[:2] == ["dialer", group] and option in argv:
            return argv[argv.index(option) + 1]
    raise AssertionError(f"README: no `dialer {group} ... {option}`")


def wait_for_ami_port(sim: subprocess.Popen, log: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"AMI [\d.]+:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        assert sim.poll() is None, log.read_text()
        time.sleep(0.1)
    raise AssertionError("dialer sim did not start:\n" + log.read_text())


def wait_for_port(port: int, shell: Shell) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert all(p.poll() is None for p in shell.jobs.values()), shell.log()
        time.sleep(0.1)
    raise AssertionError(f"dialer serve is not listening on {port}\n" + shell.log())
