"""QA: `--help` texts tell an admin what the options really do."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from agi.cli import main
from agi.rules.retry import DEFAULT_RETRY_MINUTES


@pytest.mark.parametrize("command", [["campaign", "create"], ["campaign", "set"]])
def test_retry_help_says_the_rules_replace_the_defaults(command):
    # `--retry busy=1` alone stops service errors, drops and machines from being retried: say so
    text = " ".join(CliRunner().invoke(main, [*command, "--help"], terminal_width=200).output.split())
    assert "replace the defaults" in text and "not retried" in text
    for code, minutes in DEFAULT_RETRY_MINUTES.items():
        assert f"{code}={minutes}" in text


def test_sim_plan_help_names_the_plain_text_form_it_accepts(tmp_path):
    plan = tmp_path / "plan.txt"
    plan.write_text("+15551230001 busy\n* human\n")
    from agi.sim.scenarios import ScenarioPlan

    assert ScenarioPlan.load(plan)  # plain text is accepted, so the option's help must say so
    text = " ".join(CliRunner().invoke(main, ["sim", "--help"], terminal_width=200).output.split())
    option = text[text.rindex("--plan FILE"):text.rindex("--seed INTEGER")]
    assert "plain text" in option
