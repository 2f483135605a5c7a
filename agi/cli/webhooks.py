"""`dialer webhooks ...`: a campaign's URLs that receive each final attempt; deliveries and failures."""

from __future__ import annotations

import click

from agi.cli._util import fail, json_option, print_json, print_table, run_conn
from agi.admin.campaigns import find_campaign
from agi.db.models import Campaign
from agi.webhooks import outbox


@click.group("webhooks")
def webhooks() -> None:
    """Webhooks: add, list, remove; deliveries and failures; retry failed ones. `dialer web` delivers them."""


@webhooks.command("add")
@click.option("--campaign", "campaign", required=True, metavar="CAMPAIGN", help="Campaign id or name.")
@click.argument("url")
@json_option
@click.pass_obj
def add(obj, campaign: str, url: str, as_json: bool) -> None:
    """POST each final attempt of CAMPAIGN to URL (JSON, signed with the secret printed here, once)."""
    try:
        url = outbox.check_url(url)
    except ValueError as exc:
        fail(str(exc))

    async def work(conn):
        return await outbox.add_hook(conn, (await find_campaign(conn, campaign, Campaign.id)).id, url)

    out = run_conn(obj.settings.db_url, work)
    if as_json:
        print_json(out)
        return
    click.echo(f"Webhook {out['id']} added. Signing secret (shown once): {out['secret']}")
    click.echo("Receivers check the X-Dialer-Signature header: sha256=HMAC-SHA256(secret, raw body), hex.", err=True)


@webhooks.command("list")
@json_option
@click.pass_obj
def list_(obj, as_json: bool) -> None:
    """Webhooks with their pending, delivered and failed messages."""
    rows = run_conn(obj.settings.db_url, outbox.list_hooks)
    if as_json:
        print_json(rows)
        return
    print_table(f"Webhooks ({len(rows)})",
                ["id", "campaign", "url", "pending", "delivered", "failed", "scanned to (UTC)"],
                [[r["id"], r["campaign"], r["url"], r["pending"], r["delivered"], r["failed"], r["cursor_at"]]
                 for r in rows])


@webhooks.command("remove")
@click.argument("hook_id", type=int)
@click.pass_obj
def remove(obj, hook_id: int) -> None:
    """Remove webhook HOOK_ID with its undelivered messages."""
    if not run_conn(obj.settings.db_url, lambda conn: outbox.remove_hook(conn, hook_id)):
        fail(f"no webhook {hook_id}; see `dialer webhooks list`")
    click.echo(f"Webhook {hook_id} removed.")


@webhooks.command("deliveries")
@click.option("--hook", "hook_id", type=int, help="Only this webhook.")
@click.option("--status", type=click.Choice(outbox.STATUSES), help="Only pending, delivered or failed.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="At most this many (0: all).")
@json_option
@click.pass_obj
def deliveries(obj, hook_id: int | None, status: str | None, limit: int, as_json: bool) -> None:
    """Deliveries, newest first: tries, the receiver's last answer or error."""
    rows = run_conn(obj.settings.db_url, lambda conn: outbox.list_deliveries(
        conn, status=status, hook_id=hook_id, limit=limit or None))
    if as_json:
        print_json(rows)
        return
    print_table(f"Deliveries ({len(rows)})", ["id", "hook", "attempt", "status", "tries", "next try (UTC)",
                                              "last answer", "delivered (UTC)"],
                [[r["id"], r["webhook_id"], r["attempt_id"], r["status"], r["tries"],
                  r["next_try_at"] if r["status"] == "pending" else "",
                  r["last_error"] or (f"HTTP {r['last_status']}" if r["last_status"] else ""), r["delivered_at"]]
                 for r in rows])


@webhooks.command("retry")
@click.option("--hook", "hook_id", type=int, help="Only this webhook's failed messages.")
@click.option("--delivery", "delivery_id", type=int, help="Only this message.")
@click.pass_obj
def retry(obj, hook_id: int | None, delivery_id: int | None) -> None:
    """Send failed messages again (due now, tries from zero)."""
    n = run_conn(obj.settings.db_url, lambda conn: outbox.retry_failed(conn, hook_id, delivery_id))
    click.echo(f"{n} failed message(s) queued again.")


def register(main: click.Group) -> None:
    main.add_command(webhooks)
