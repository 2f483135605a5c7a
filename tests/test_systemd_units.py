"""The systemd units a telephony engineer installs (dialplan/systemd/): systemd itself accepts them
(`systemd-analyze verify`, where systemd is installed), and their keys say what dialplan/README.md
promises: unprivileged, restarted on failure, a graceful SIGTERM with time for the longest call,
JSON logs, the config and environment files; the example config loads."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agi.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "dialplan" / "systemd"
INSTALLED_DIALER = "/opt/dialer/.venv/bin/dialer"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def all_values(name: str, section: str, key: str) -> list[str]:
    """Every value of a key that may repeat (Environment=, EnvironmentFile=)."""
    pattern = re.compile(rf"^{key}=(.*)$")
    text = (UNITS / name).read_text().split(f"[{section}]", 1)[1].split("\n[", 1)[0]
    return [m.group(1) for line in text.splitlines() if (m := pattern.match(line.strip()))]


@pytest.mark.parametrize("name,command", [
    ("dialer-serve.service", ["serve"]),
    ("dialer-originate@.service", ["originate", "--dialer", "%i"]),
])
def test_units_run_the_dialer_unprivileged_with_a_graceful_stop(name, command):
    service = unit(name)["Service"]
    exec_start = service["ExecStart"].split()
    assert exec_start[0] == INSTALLED_DIALER and exec_start[1:1 + len(command)] == command
    assert service["User"] == "dialer" and service["Group"] == "dialer"
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["NoNewPrivileges"] == "yes"
    envs = all_values(name, "Service", "Environment")
    assert "DIALER_LOG_FORMAT=json" in envs and "DIALER_CONFIG=/etc/dialer/dialer.toml" in envs
    assert "-/etc/dialer/dialer.env" in all_values(name, "Service", "EnvironmentFile")
    assert unit(name)["Install"]["WantedBy"] == "multi-user.target"


def test_the_serve_unit_waits_longer_than_its_calls_may_take_to_finish():
    service = unit("dialer-serve.service")["Service"]
    deadline = int(re.search(r"--shutdown-deadline (\d+)", service["ExecStart"]).group(1))
    assert deadline >= 600  # a person bridged to an agent keeps the FastAGI session while they talk
    assert int(service["TimeoutStopSec"]) > deadline  # systemd kills only after our own deadline


def test_the_originate_unit_waits_longer_than_the_originators_drain():
    import inspect

    from agi.originator.dialer import Originator

    drain = inspect.signature(Originator.run).parameters["drain_deadline"].default  # what SIGTERM gets
    assert int(unit("dialer-originate@.service")["Service"]["TimeoutStopSec"]) > drain


def test_the_example_config_loads_and_names_an_address_asterisk_reaches():
    settings = Settings.load(UNITS / "dialer.toml.example", env={})
    assert settings.agi_public and not settings.agi_public.startswith("0.0.0.0")
    assert settings.agi_allow


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed here")
@pytest.mark.parametrize("name,instance", [("dialer-serve.service", "dialer-serve.service"),
                                           ("dialer-originate@.service", "dialer-originate@pbx1.service")])
def test_systemd_analyze_verify_accepts_the_units(tmp_path, name, instance):
    # verify checks that ExecStart's program exists: point it at this checkout's dialer
    dialer = Path(sys.executable).parent / "dialer"
    (tmp_path / name).write_text((UNITS / name).read_text().replace(INSTALLED_DIALER, str(dialer)))
    res = subprocess.run(["systemd-analyze", "verify", instance], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    problems = [line for line in res.stderr.splitlines() if name.split("@")[0] in line]
    assert not problems, problems
