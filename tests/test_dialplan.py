"""dialplan/dialer.conf passes asterisklint (asterisklint-jjs) and its README names every module it uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DIALPLAN = ROOT / "dialplan" / "dialer.conf"
LINT = Path(sys.executable).parent / "asterisklint"

EXTENSIONS_CONF = """[general]
static=yes
writeprotect=no

[globals]

#include "dialer.conf"
"""


def lint(tmp_path: Path, command: str, dialplan_text: str) -> subprocess.CompletedProcess:
    (tmp_path / "extensions.conf").write_text(EXTENSIONS_CONF)
    (tmp_path / "dialer.conf").write_text(dialplan_text)
    return subprocess.run(
        [str(LINT), command, "--asterisk-version", "22", "extensions.conf"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )


def test_dialer_conf_passes_asterisklint(tmp_path):
    res = lint(tmp_path, "dialplan-check", DIALPLAN.read_text())
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == "" and "E_" not in res.stderr and "W_" not in res.stderr


@pytest.mark.parametrize("breakage", [
    ("AGI(agi://${CUT(DIALER_AGI,&,${AGI_TRY})}/outbound", "AGI(agi://${CUT(DIALER_AGI,&,${AGI_TRY}/outbound"),
    (" same => n,AMD()", " same => n,AMDX()"),  # unknown application
])
def test_asterisklint_catches_a_broken_copy(tmp_path, breakage):
    old, new = breakage
    text = DIALPLAN.read_text()
    assert old in text
    res = lint(tmp_path, "dialplan-check", text.replace(old, new, 1))
    assert res.returncode != 0


def test_readme_names_every_module_the_dialplan_uses(tmp_path):
    res = lint(tmp_path, "modules-show", DIALPLAN.read_text())
    used = set(re.findall(r"^;\s+((?:app|res|func|pbx|chan)_\w+)\s", res.stdout, re.M))
    assert {"app_amd", "res_agi", "res_fax"} <= used
    readme = (ROOT / "dialplan" / "README.md").read_text()
    for module in used | {"app_queue", "res_fax_spandsp"}:
        assert f"load => {module}.so" in readme, module


def test_readme_names_every_module_the_fastagi_flows_exec(tmp_path):
    """The flows run applications with EXEC (WaitForSilence, Queue): their modules must load too."""
    apps = sorted({app for path in (ROOT / "agi" / "flows").glob("*.py")
                   for app in re.findall(r'\.exec\(\s*"(\w+)"', path.read_text())})
    assert {"WaitForSilence", "Queue"} <= set(apps)
    steps = "\n".join(f" same => n,{app}()" for app in apps)
    res = lint(tmp_path, "modules-show", f"[flows]\nexten => s,1,NoOp()\n{steps}\n")
    used = set(re.findall(r"^;\s+(app_\w+)\s", res.stdout, re.M))
    assert len(used) >= len(apps), res.stdout
    readme = (ROOT / "dialplan" / "README.md").read_text()
    assert [m for m in sorted(used) if f"load => {m}.so" not in readme] == []


def dialplan_steps(tmp_path: Path) -> list[tuple[str, str, int, str, str]]:
    """(context, exten, priority, app, data) of dialer.conf, as asterisklint's dialplan-show reads it."""
    res = lint(tmp_path, "dialplan-show", DIALPLAN.read_text())
    steps, context, exten = [], None, None
    for line in res.stdout.splitlines():
        m = re.match(r"\[ Context '([^']+)'", line)
        if m:
            context = m.group(1)
            continue
        m = re.match(r"\s+(?:'([^']+)' =>)?\s*(?:\[[\w-]+\])?\s+(\d+)\. (\w+)\((.*)\)\s+\[pbx_config\]$", line)
        if m:
            exten = m.group(1) or exten
            steps.append((context, exten, int(m.group(2)), m.group(3), m.group(4)))
    return steps


def test_dialplan_show_parses_every_step(tmp_path):
    steps = dialplan_steps(tmp_path)
    apps = [(c, e, p, a) for c, e, p, a, _ in steps]
    assert ("dialer-outbound", "s", 3, "AMD") in apps
    assert ("dialer-outbound", "h", 2, "AGI") in apps
    assert ("dialer-wrapup", "s", 2, "AGI") in apps
    assert ("dialer-outbound", "s", 7, "ExecIf") in apps
    assert ("dialer-preview", "s", 2, "Dial") in apps
    assert len(steps) == 32
    # each AGI() takes the next FastAGI server of DIALER_AGI while the one tried is unreachable
    agis = [(c, e, p, d) for c, e, p, a, d in steps if a == "AGI"]
    assert len(agis) == 4 and all(d.startswith("agi://${CUT(DIALER_AGI,&,${AGI_TRY})}/") for *_, d in agis)
    for c, e, p, _ in agis:
        retry = [d for c2, e2, p2, a, d in steps if (c2, e2, p2, a) == (c, e, p + 1, "GotoIf")]
        assert retry and '"${AGISTATUS}" = "FAILURE"' in retry[0] and "FIELDQTY(DIALER_AGI,&)" in retry[0]
