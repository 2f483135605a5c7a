"""QA: `campaign list` tells a running campaign that no dialer runs (it dials nothing) from one that dials."""

from __future__ import annotations

import json

from click.testing import CliRunner

from agi.cli import main


def cli(db_url: str, *args: str):
    res = CliRunner().invoke(main, ["--db", db_url, *args], terminal_width=250)
    assert res.exit_code == 0, res.output
    return res.output


def test_campaign_list_flags_a_running_campaign_without_a_dialer(db_engine, db_url):
    cli(db_url, "dialers", "add", "box1")
    for name in ("lonely", "served"):
        cli(db_url, "campaign", "create", name, "--mode", "broadcast")
        cli(db_url, "campaign", "schedule", name, "--start", "now", "--stop", "2099-12-31")
    cli(db_url, "campaign", "assign", "served", "--dialer", "box1")
    for name in ("lonely", "served"):
        cli(db_url, "campaign", "start", name)
    rows = {r["name"]: r for r in json.loads(cli(db_url, "campaign", "list", "--json"))}
    assert rows["lonely"]["dialers"] == 0 and rows["served"]["dialers"] == 1
    table = {line.split("│")[2].strip(): line for line in cli(db_url, "campaign", "list").splitlines()
             if line.count("│") > 3}
    assert "no dialer" in table["lonely"] and "no dialer" not in table["served"]
