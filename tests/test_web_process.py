"""`dialer web` as a real process on both databases: serves the API over TCP, delivers webhooks,
logs requests without any key, stops cleanly on SIGTERM; the OpenAPI document in docs/ is the app's."""

from __future__ import annotations

import pytest

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import httpx
from click.testing import CliRunner

from agi.cli import main
from agi.cli import web as web_cli
from agi.auth.keys import split_key
from agi.web import limits
from agi.web.app import create_app
from test_webhooks import Receiver

pytestmark = pytest.mark.e2e  # the whole stack (simulator, processes or a browser): `-m 'not e2e'` skips it

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "docs" / "openapi.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def dialer(env: dict, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from agi.cli import main; main(prog_name='dialer')", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_dialer_web_serves_the_api_delivers_webhooks_and_stops_on_sigterm(db_url, tmp_path):
    env = {**os.environ, "DIALER_DB_URL": db_url, "PYTHONPATH": str(ROOT)}
    await dialer(env, "db", "upgrade")
    await dialer(env, "users", "add", "crm", "--role", "supervisor")
    key = (await dialer(env, "keys", "create", "--user", "crm", "--name", "sync")).strip()
    await dialer(env, "campaign", "create", "spring", "--countries", "US")
    rx = Receiver()
    await dialer(env, "webhooks", "add", "--campaign", "spring", rx.url)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from agi.cli import main; main(prog_name='dialer')",
        "web", "--bind", f"127.0.0.1:{port}", env=env, stderr=asyncio.subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as http:
            for _ in range(200):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            headers = {"Authorization": f"Bearer {key}"}
            assert (await http.get("/api/v1/campaigns")).status_code == 401
            added = await http.post("/api/v1/campaigns/spring/contacts", headers=headers,
                                    json={"external_id": "42", "phone": "2025550190", "dnc": True})
            assert added.status_code == 201 and added.json()["predial"] == "dnc"
            docs = await http.get("/docs")
            assert docs.status_code == 200 and "swagger" in docs.text.lower()
            for _ in range(200):  # the pre-dial attempt is final: its webhook comes from the worker in `dialer web`
                if rx.received:
                    break
                await asyncio.sleep(0.05)
            assert [json.loads(b)["attempt"]["result"] for _h, b in rx.received] == ["dnc"]
        proc.send_signal(signal.SIGTERM)
        log = (await asyncio.wait_for(proc.stderr.read(), 30)).decode()
        assert await proc.wait() == 0
        assert "POST /api/v1/campaigns/spring/contacts" in log  # requests are logged ...
        assert key not in log and split_key(key)[1] not in log  # ... without the key (nor its secret)
    finally:
        rx.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_web_refuses_a_database_without_the_schema(tmp_path):
    res = CliRunner().invoke(main, ["--db", f"sqlite:///{tmp_path / 'empty.db'}", "web", "--bind", "127.0.0.1:1"])
    assert res.exit_code == 1 and "dialer db upgrade" in res.output


def test_docs_openapi_json_is_the_app_s_document():
    # regenerate with: dialer web --openapi docs/openapi.json
    current = web_cli.openapi_text(create_app(db_url="sqlite+aiosqlite://"))
    assert OPENAPI.read_text(encoding="utf-8") == current, "docs/openapi.json is stale: run " \
        "`dialer web --openapi docs/openapi.json`"


def test_the_cli_s_body_limit_default_is_the_app_s():
    assert web_cli.DEFAULT_MAX_BODY == limits.DEFAULT_MAX_BODY
