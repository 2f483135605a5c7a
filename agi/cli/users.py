"""`dialer users ...`: people who use the API (through their keys) and the console: role, password."""

from __future__ import annotations

import sys

import click

from agi.auth import users as logic
from agi.auth.roles import Role
from agi.cli._util import json_option, print_json, print_table, run_conn

ROLES = click.Choice([r.value for r in Role])


def _password(ask: bool, from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if ask:
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return None


@click.group("users")
def users() -> None:
    """Users: name, role (admin, supervisor, agent), password for the console; their API keys: `dialer keys`."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLES, required=True, help="admin: everything; supervisor: run campaigns, contacts, "
              "reports; agent: dispositions, DNC, contact lookups.")
@click.option("--password", "ask", is_flag=True, help="Ask for a password (console login).")
@click.option("--password-stdin", "from_stdin", is_flag=True, help="Read the password from standard input.")
@json_option
@click.pass_obj
def add(obj, name: str, role: str, ask: bool, from_stdin: bool, as_json: bool) -> None:
    """Add user NAME."""
    password = _password(ask, from_stdin)
    out = run_conn(obj.settings.db_url, lambda conn: logic.add_user(conn, name, role, password))
    if as_json:
        print_json(out)
    else:
        click.echo(f"User {out['name']!r} added ({out['role']}). API key: `dialer keys create --user {out['name']} "
                   f"--name WHAT-FOR`.")


@users.command("set")
@click.argument("name")
@click.option("--role", type=ROLES, help="New role (the user's keys above it are lowered to it).")
@click.option("--disable/--enable", "disabled", default=None, help="A disabled user's keys and login stop working.")
@click.option("--password", "ask", is_flag=True, help="Ask for a new password.")
@click.option("--password-stdin", "from_stdin", is_flag=True, help="Read the new password from standard input.")
@json_option
@click.pass_obj
def set_(obj, name: str, role: str | None, disabled: bool | None, ask: bool, from_stdin: bool, as_json: bool) -> None:
    """Change user NAME."""
    password = _password(ask, from_stdin)
    out = run_conn(obj.settings.db_url, lambda conn: logic.set_user(conn, name, role, disabled, password))
    if as_json:
        print_json(out)
        return
    said = []
    if "role" in out:
        said.append(f"role {out['role']}")
    if "disabled" in out:
        said.append("disabled" if out["disabled"] else "enabled")
    if out["password_changed"]:
        said.append("password set")
    click.echo(f"User {out['name']!r} changed: {', '.join(said)}.")
    if out["keys_lowered"]:
        click.echo(f"{out['keys_lowered']} key(s) lowered to {out['role']}.")


@users.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def remove(obj, name: str, yes: bool) -> None:
    """Remove user NAME and their API keys."""
    if not yes:
        click.confirm(f"Remove user {name!r} and their API keys?", abort=True)
    out = run_conn(obj.settings.db_url, lambda conn: logic.remove_user(conn, name))
    click.echo(f"User {out['name']!r} removed with {out['keys_removed']} key(s).")


@users.command("list")
@json_option
@click.pass_obj
def list_(obj, as_json: bool) -> None:
    """All users."""
    rows = run_conn(obj.settings.db_url, logic.list_users)
    if as_json:
        print_json(rows)
        return
    print_table(f"Users ({len(rows)})", ["name", "role", "state", "password", "keys", "last login (UTC)"],
                [[r["name"], r["role"], "disabled" if r["disabled"] else "enabled", "yes" if r["password"] else "no",
                  r["keys"], r["last_login_at"]] for r in rows])


def register(main: click.Group) -> None:
    main.add_command(users)
