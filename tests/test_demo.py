"""`dialer demo`: the README's first command, and `--compare` (the same list dialed progressive and
predictive, side by side)."""

from __future__ import annotations

import pytest

import re
import subprocess
import sys
from pathlib import Path

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

DIALER = str(Path(sys.executable).parent / "dialer")


def test_demo_compare_dials_the_same_list_both_ways_and_prints_them_side_by_side(tmp_path):
    res = subprocess.run([DIALER, "demo", "--compare", "--minutes", "5", "--contacts", "400", "--keep",
                          str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    header = next(line for line in out.splitlines() if "progressive" in line and "predictive" in line)
    assert header.index("progressive") < header.index("predictive")
    placed = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+", next(
        line for line in out.splitlines() if "calls placed" in line))]
    assert len(placed) == 2 and all(n > 0 for n in placed)
    for row in ("connected to an agent", "drop rate", "agent occupancy", "connects per agent-hour"):
        assert row in out
    # each mode had its own database, dialed from the same generated list
    assert (tmp_path / "progressive" / "contacts.csv").read_text() == (tmp_path / "predictive" / "contacts.csv").read_text()
