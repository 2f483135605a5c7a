"""`dialer keys ...`: API keys (shown once at creation, stored hashed, revocable)."""

from __future__ import annotations

import click

from agi.auth import keys as logic
from agi.auth.roles import Role
from agi.cli._util import json_option, print_json, print_table, run_conn


@click.group("keys")
def keys() -> None:
    """API keys of users: create (shown once), list, revoke."""


@keys.command("create")
@click.option("--user", required=True, help="The user the key acts as (`dialer users list`).")
@click.option("--name", required=True, help="What the key is for, e.g. crm-sync.")
@click.option("--role", type=click.Choice([r.value for r in Role]),
              help="Role of the key (default and at most the user's).")
@click.option("--campaigns", metavar="C1,C2", help="Only these campaigns (names or ids); others answer 404.")
@json_option
@click.pass_obj
def create(obj, user: str, name: str, role: str | None, campaigns: str | None, as_json: bool) -> None:
    """Create a key; it is printed this once (only a hash of it is kept)."""
    scope = [c for c in campaigns.split(",") if c.strip()] if campaigns else None
    out = run_conn(obj.settings.db_url, lambda conn: logic.create_key(conn, user, name, role, scope))
    if as_json:
        print_json(out)
        return
    click.echo(out["key"])
    click.echo(f"Key {out['key_id']} ({out['name']}) for {out['user']}, role {out['role']}"
               + (f", campaigns {','.join(map(str, out['campaigns']))}" if out["campaigns"] else "")
               + ". Store it now: it is not shown again.", err=True)


@keys.command("list")
@click.option("--user", help="Only this user's keys.")
@json_option
@click.pass_obj
def list_(obj, user: str | None, as_json: bool) -> None:
    """Keys (never their secrets) with their last use."""
    rows = run_conn(obj.settings.db_url, lambda conn: logic.list_keys(conn, user))
    if as_json:
        print_json(rows)
        return
    print_table(f"API keys ({len(rows)})", ["key id", "name", "user", "role", "campaigns", "last used (UTC)", "state"],
                [[r["key_id"], r["name"], r["user"], r["role"], r["campaigns"] or "all", r["last_used_at"],
                  f"revoked {r['revoked_at']:%Y-%m-%d %H:%M}" if r["revoked_at"] else "active"] for r in rows])


@keys.command("revoke")
@click.argument("key_id")
@click.pass_obj
def revoke(obj, key_id: str) -> None:
    """Revoke KEY_ID (see `dialer keys list`): it stops working at once."""
    out = run_conn(obj.settings.db_url, lambda conn: logic.revoke_key(conn, key_id))
    click.echo(f"Key {out['key_id']} ({out['name']}) " + ("was already revoked." if out["was_revoked"] else "revoked."))


def register(main: click.Group) -> None:
    main.add_command(keys)
