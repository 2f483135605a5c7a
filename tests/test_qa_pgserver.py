"""QA: `python scripts/pgserver.py` as an operator runs it: in the background, stopped with `kill`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pgserver.py"


def test_help_prints_usage_and_starts_nothing():
    out = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and "usage" in out.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_kill_stops_the_postgresql_it_started(signum):
    # started like `python scripts/pgserver.py &` from a script: SIGINT ignored on entry
    proc = subprocess.Popen([sys.executable, str(SCRIPT)], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        url = make_url(proc.stdout.readline().strip())
        socket.create_connection((url.host, url.port), timeout=5).close()  # it is up
        os.kill(proc.pid, signum)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    with pytest.raises(OSError):
        socket.create_connection((url.host, url.port), timeout=2).close()
