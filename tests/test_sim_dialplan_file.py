"""The simulator runs dialplan/dialer.conf itself, the file a telephony engineer includes: there is no
copy of it to keep equal, in a checkout or in an installed wheel."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from agi.sim.dialplan import PROJECT_DIALPLAN, PROJECT_DIALPLAN_TEXT, Dialplan
from agi.sim.queues import QueueSystem
from agi.sim.simulator import Simulator

ROOT = Path(__file__).resolve().parent.parent
DIALER_CONF = ROOT / "dialplan" / "dialer.conf"


def test_the_simulator_runs_the_dialplan_file_users_include():
    assert PROJECT_DIALPLAN_TEXT == DIALER_CONF.read_text(encoding="utf-8")
    file_steps = [(s.context, s.exten, s.priority, s.app, s.args) for s in Dialplan.parse(DIALER_CONF.read_text()).steps()]
    assert [(s.context, s.exten, s.priority, s.app, s.args) for s in PROJECT_DIALPLAN.steps()] == file_steps
    assert Simulator(agi_port=1, ami_port=0).dialplan is PROJECT_DIALPLAN
    assert QueueSystem().dialplan is PROJECT_DIALPLAN  # where the Queue F() option sends the agent's leg


def test_the_package_links_to_the_file_rather_than_copying_it():
    packaged = ROOT / "agi" / "sim" / "dialer.conf"
    assert packaged.is_symlink() and packaged.resolve() == DIALER_CONF.resolve()


def test_a_built_package_carries_the_dialplan_file(tmp_path):
    """What setuptools puts in the wheel (build_py's tree, which bdist_wheel zips): the file itself."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("agi", "dialplan"):
        shutil.copytree(ROOT / folder, src / folder, symlinks=True, ignore=ignore)
    out = tmp_path / "lib"
    res = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "-d", str(out)],
                         cwd=src, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    built = out / "agi" / "sim" / "dialer.conf"
    assert built.is_file() and not built.is_symlink()
    assert built.read_bytes() == DIALER_CONF.read_bytes()
