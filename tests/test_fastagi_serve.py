"""`dialer serve` as a real process: listens, answers a FastAGI call, stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

from click.testing import CliRunner

from agi.cli import main

ROOT = Path(__file__).resolve().parent.parent


async def test_dialer_serve_answers_a_call_and_stops_gracefully_on_sigterm(tmp_path):
    env = {**os.environ, "DIALER_DB_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"}
    upgrade = await asyncio.create_subprocess_exec(  # serve refuses a database without the schema
        sys.executable, "-c", "from agi.cli import main; main(prog_name='dialer')", "db", "upgrade",
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stderr=asyncio.subprocess.DEVNULL)
    assert await upgrade.wait() == 0
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from agi.cli import main; main(prog_name='dialer')",
        "serve", "--bind", "127.0.0.1:0", "--allow", "127.0.0.1", "--max-sessions", "5", "--loop", "asyncio",
        cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)}, stderr=asyncio.subprocess.PIPE,
    )
    try:
        port = None
        log = []
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
            assert line, "dialer serve exited: " + "".join(log)
            log.append(line)
            if m := re.search(r"listening on 127\.0\.0\.1:(\d+)", line):
                port = int(m.group(1))
        assert "max sessions 5" in log[-1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"agi_network: yes\nagi_network_script: nosuchflow\nagi_uniqueid: u1\n\n")
        commands = []
        while line := await asyncio.wait_for(reader.readline(), 10):
            commands.append(line.decode().strip())
            writer.write(b"200 result=1\n")
        writer.close()
        assert commands[-1] == "HANGUP"
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.stderr.read(), 20)).decode()
        assert await proc.wait() == 0
        assert "graceful shutdown" in rest and "FastAGI server stopped" in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_bad_allow_entry_is_a_usage_error():
    result = CliRunner().invoke(main, ["serve", "--allow", "not-an-ip"])
    assert result.exit_code == 2 and "bad allow-list entry" in result.output
