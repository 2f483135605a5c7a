"""Scenario plans: tables, seeded mixes, plan files; the dialplan data; `dialer sim`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from agi.cli import main
from agi.sim.callee import KeyPress
from agi.sim.dialplan import PROJECT_DIALPLAN
from agi.sim.expressions import evaluate, substitute
from agi.sim.scenarios import SCENARIOS, Network, ScenarioPlan, scenario
from agi.sim.originate import number_of, parse_callerid

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "dial,number",
    [("PJSIP/+15551234567@trunk", "+15551234567"), ("Local/busy@callee", "busy"),
     ("Local/human@callee/n", "human"), ("SIP/trunk/5551234", "5551234"), ("NoSuchTech/12345", "12345"),
     ("PJSIP/trunk/sip:+15551234567@sbc.example", "+15551234567")],
)
def test_the_number_is_taken_from_the_originate_channel(dial: str, number: str):
    assert number_of(dial) == number


def test_callerid_header_is_split_into_name_and_number():
    assert parse_callerid('"Acme Campaign" <15550001111>') == ("Acme Campaign", "15550001111")
    assert parse_callerid("15550001111") == ("", "15550001111")


def test_table_plan_gives_each_number_its_scenario_and_rejects_unknown_numbers():
    plan = ScenarioPlan.table({"+1": "busy", "+2": {"base": "human", "callee": {"keys": ["1@2.0"]}}})
    assert plan.choose("+1").network is Network.BUSY
    two = plan.choose("+2")
    assert two.callee.keys == (KeyPress("1", 2.0, 0),)
    with pytest.raises(LookupError, match="no scenario for number"):
        plan.choose("+3")
    assert ScenarioPlan.table({}, default="rejected").choose("+3").network is Network.REJECTED


def test_trace_extension_names_map_to_scenarios():
    plan = ScenarioPlan.table({})
    assert plan.choose("noanswer").name == "no_answer"
    assert plan.choose("doesnotexist").network is Network.NO_EXTEN


def test_seeded_mix_is_reproducible_and_independent_of_call_order():
    a, b = ScenarioPlan.mix(seed=3), ScenarioPlan.mix(seed=3)
    numbers = [f"+1555{n:07d}" for n in range(300)]
    first = [a.choose(n).name for n in numbers]
    second = [b.choose(n).name for n in reversed(numbers)][::-1]
    assert first == second
    assert first != [ScenarioPlan.mix(seed=4).choose(n).name for n in numbers]


def test_mix_rates_shape_the_outcomes():
    plan = ScenarioPlan.mix(seed=1, rates={k: 0.0 for k in ("machine", "fax", "notsure", "no_answer", "congestion",
                                                            "unallocated", "number_changed", "rejected",
                                                            "no_channel")} | {"human": 0.5, "busy": 0.5})
    counts = Counter(plan.choose(f"+1{n}").network for n in range(1000))
    assert set(counts) == {Network.ANSWER, Network.BUSY}
    assert 400 < counts[Network.BUSY] < 600


def test_unknown_rate_or_field_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown rate"):
        ScenarioPlan.mix(rates={"bussy": 1.0})
    with pytest.raises(ValueError, match="unknown scenario field"):
        scenario({"base": "human", "ringtime": 3})
    with pytest.raises(ValueError, match="unknown scenario 'nope'"):
        scenario("nope")


def test_toml_and_json_plan_files_load(tmp_path: Path):
    toml = tmp_path / "plan.toml"
    toml.write_text(
        '[mix]\nseed = 5\nhuman = 1.0\nbusy = 0.0\nmachine = 0.0\nfax = 0.0\nnotsure = 0.0\nno_answer = 0.0\n'
        'congestion = 0.0\nunallocated = 0.0\nnumber_changed = 0.0\nrejected = 0.0\nno_channel = 0.0\n'
        '[table]\n"+15550000001" = "busy"\n"+15550000002" = "slow_machine"\n'
        '[scenarios.slow_machine]\nbase = "machine"\nring_time = 9.5\ncallee = {greeting_seconds = 20.0}\n')
    plan = ScenarioPlan.load(toml)
    assert plan.choose("+15550000001").name == "busy"
    slow = plan.choose("+15550000002")
    assert (slow.name, slow.ring_time, slow.callee.greeting_seconds) == ("slow_machine", 9.5, 20.0)
    assert plan.choose("+15559999999").network is Network.ANSWER
    js = tmp_path / "plan.json"
    js.write_text(json.dumps({"table": {"+1": "congestion"}, "default": "no_answer"}))
    plan = ScenarioPlan.load(js)
    assert plan.choose("+1").network is Network.CONGESTION and plan.choose("+2").network is Network.NO_ANSWER
    bad = tmp_path / "bad.toml"
    bad.write_text("[mix\n")
    with pytest.raises(ValueError, match="not a valid TOML plan"):
        ScenarioPlan.load(bad)


def test_every_named_scenario_round_trips_through_a_dict():
    for name, sc in SCENARIOS.items():
        d = sc.to_dict()
        assert d["name"] == name
        assert scenario(d).network is sc.network


def test_project_dialplan_steps_are_the_ones_of_dialer_conf():
    steps = [(s.context, s.exten, s.priority, s.app) for s in PROJECT_DIALPLAN.steps()]
    failover = ["Set", "AGI", "GotoIf", "Hangup", "Set", "Goto"]  # each AGI(): the next server on FAILURE
    outbound = ["NoOp", "Set", "AMD", "Set", "AGI", "GotoIf", "ExecIf", "Hangup", "Set", "Goto"]
    expected = ([("dialer-outbound", "s", i, app) for i, app in enumerate(outbound, 1)]
                + [("dialer-outbound", e, i, app) for e in ("fax", "h") for i, app in enumerate(failover, 1)]
                + [("dialer-wrapup", "s", i, app) for i, app in enumerate(failover, 1)])
    assert [s for s in steps if s[0] != "dialer-preview"] == expected
    agi = PROJECT_DIALPLAN.find("dialer-outbound", "s", 5)
    assert agi is not None and agi.args == (
        "agi://${CUT(DIALER_AGI,&,${AGI_TRY})}/outbound?campaign=${CAMPAIGN_ID},${AMDSTATUS},${AMDCAUSE}")
    assert PROJECT_DIALPLAN.label("dialer-outbound", "s", "next") == 9


@pytest.mark.parametrize(
    "expr,value",
    [('"" != "no"', "1"), ('"no" != "no"', "0"), ("3 < 20", "1"), ("20 < 20", "0"), ("4 + 1", "5"), ("a = a", "1")],
)
def test_expressions_of_the_capture_rig_dialplans(expr: str, value: str):
    assert evaluate(expr) == value


def test_substitution_expands_variables_then_expressions():
    vars_ = {"i": "19", "FAXDETECT": ""}
    assert substitute("$[${i} + 1]", lambda n: vars_.get(n, "")) == "20"
    assert substitute('$["${FAXDETECT}" != "no"]?Set(X=1)', lambda n: vars_.get(n, "")) == "1?Set(X=1)"


def test_dialer_sim_help_documents_plan_format_speed_and_faults():
    result = CliRunner().invoke(main, ["sim", "--help"])
    assert result.exit_code == 0, result.output
    for text in ("[mix]", "[table]", "[scenarios.", "--speed", "--plan", "--refuse-logins", "--agi-never-connect",
                 "--agi-close-on", "USR1", "busy", "no_answer", "--response-first", "[faults]", "response_first",
                 "--ami-read"):
        assert text in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dialer_sim_runs_until_interrupted_and_writes_its_record(tmp_path: Path):
    port = _free_port()
    record = tmp_path / "calls.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from agi.cli import main; main()", "sim", "--ami-port", str(port), "--speed", "100", "--record", str(record)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline, "dialer sim did not open its AMI port"
                time.sleep(0.1)
        with conn:
            assert conn.makefile("rb").readline() == b"Asterisk Call Manager/11.0.0\r\n"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"0 calls" in err
    assert record.exists()


def test_mix_rates_can_be_given_as_keywords():
    plan = ScenarioPlan.mix(seed=2, human=0.0, machine=0.0, fax=0.0, notsure=0.0, no_answer=0.0, congestion=0.0,
                            unallocated=0.0, number_changed=0.0, rejected=0.0, no_channel=0.0, busy=1.0)
    assert {plan.choose(f"+1{n}").network for n in range(50)} == {Network.BUSY}


def test_plain_text_plan_file(tmp_path: Path):
    path = tmp_path / "plan.txt"
    path.write_text("# fixed numbers\n+15550000001 busy\n+15550000002 machine  # a voicemail\n* no_answer\n")
    plan = ScenarioPlan.load(path)
    assert [plan.choose(n).name for n in ("+15550000001", "+15550000002", "+15550000003")] == \
        ["busy", "machine", "no_answer"]
    path.write_text("+1 busy\nmix 4\n")
    assert ScenarioPlan.load(path).choose("+1").name == "busy"
    path.write_text("+1 busy extra\n")
    with pytest.raises(ValueError, match="plan.txt:1: expected"):
        ScenarioPlan.load(path)


def test_plan_file_faults_table_sets_the_response_first_order(tmp_path: Path):
    from agi.sim.simulator import Simulator

    path = tmp_path / "plan.toml"
    path.write_text('default = "busy"\n[faults]\nresponse_first = 0.3\nresponse_first_seed = 9\n')
    plan = ScenarioPlan.load(path)
    assert plan.faults == {"response_first": 0.3, "response_first_seed": 9}
    faults = Simulator(plan=plan).faults
    assert (faults.response_first, faults.response_first_seed) == (0.3, 9)
    mixed = tmp_path / "mix.toml"
    mixed.write_text("[mix]\nseed = 2\n[faults]\nresponse_first = 1\n")
    assert Simulator(plan=ScenarioPlan.load(mixed)).faults.response_first == 1.0
    assert Simulator(plan=ScenarioPlan.mix(seed=1)).faults.response_first == 0.0  # off unless asked for


@pytest.mark.parametrize(
    "table, message",
    [
        ("response_first = 1.5", "a share between 0 and 1"),
        ("response_first = \"often\"", "expected a number"),
        ("router_lag = -1", "0 or more"),
        ("drop_everything = true", "unknown fault setting"),
    ],
)
def test_a_bad_faults_table_is_a_clear_error(tmp_path: Path, table: str, message: str):
    path = tmp_path / "plan.toml"
    path.write_text(f'default = "busy"\n[faults]\n{table}\n')
    with pytest.raises(ValueError, match=message):
        ScenarioPlan.load(path)


def test_dialer_sim_response_first_option_is_a_share(tmp_path: Path):
    result = CliRunner().invoke(main, ["sim", "--response-first", "2", "--ami-port", "0"])
    assert result.exit_code != 0 and "--response-first" in result.output
