"""Users, keys, roles and the audit hook of the CLI: passwords are argon2id, keys are shown once and
stored hashed, a role grants a fixed set of permissions, every changing command is audited."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from agi import audit
from agi.auth import users
from agi.auth.roles import GRANTS, Permission as P, Role
from agi.cli import audit as cli_audit
from agi.cli import main
from agi.db.models import ApiKey, AuditEntry, User


def run(engine, *args: str, input: str | None = None):
    url = engine.url.render_as_string(hide_password=False)
    return asyncio.to_thread(CliRunner().invoke, main, ["--db", url, *args], input=input)


def test_every_command_is_audited_as_a_change_or_listed_as_a_read():
    paths = {path for path, _cmd in cli_audit.commands(main)}
    assert paths == set(cli_audit.CHANGES) | cli_audit.READS
    assert not set(cli_audit.CHANGES) & cli_audit.READS


@pytest.mark.parametrize("role, allowed", [
    (Role.AGENT, {P.CONTACTS_READ, P.DNC_CHECK, P.DNC_ADD, P.DISPOSE}),
    (Role.SUPERVISOR, {P.CONTACTS_READ, P.DNC_CHECK, P.DNC_ADD, P.DISPOSE, P.CAMPAIGNS_READ, P.CAMPAIGNS_RUN,
                       P.CONTACTS_WRITE, P.REPORTS_READ}),
    (Role.ADMIN, set(P)),
])
def test_each_role_grants_exactly_these_permissions(role, allowed):
    assert GRANTS[role] == allowed


@pytest.mark.parametrize("given, stored", [
    ({"password": "hunter2hunter2", "name": "x"}, {"password": "***", "name": "x"}),
    ({"ami_secret": "s", "webhook": {"secret": "t", "url": "u"}}, {"ami_secret": "***", "webhook": {"secret": "***", "url": "u"}}),
    ({"api_key": "dk_1", "key_id": "abc", "keys": "1=interested"}, {"api_key": "***", "key_id": "abc", "keys": "1=interested"}),
    ({"note": "x" * 600}, {"note": "x" * 500 + "…"}),
])
def test_audit_details_never_hold_a_secret(given, stored):
    assert audit.redact(given) == stored


async def test_users_and_keys_from_the_cli_key_shown_once_and_stored_hashed(db_engine):
    added = await run(db_engine, "users", "add", "carol", "--role", "supervisor", "--password-stdin",
                      input="correct horse battery\n")
    assert added.exit_code == 0, added.output
    made = await run(db_engine, "keys", "create", "--user", "carol", "--name", "crm", "--json")
    key = json.loads(made.stdout)["key"]
    listed = await run(db_engine, "keys", "list", "--json")
    [row] = json.loads(listed.stdout)
    assert key.startswith(f"dk_{row['key_id']}_") and key.split("_", 2)[2] not in listed.output
    async with db_engine.connect() as conn:
        stored = (await conn.execute(select(ApiKey.__table__))).one()
        user = (await conn.execute(select(User.__table__))).one()
    assert key.split("_", 2)[2] not in json.dumps([str(v) for v in stored])
    assert user.password_hash.startswith("$argon2id$") and "correct horse" not in user.password_hash
    too_high = await run(db_engine, "keys", "create", "--user", "carol", "--name", "x", "--role", "admin")
    assert too_high.exit_code == 1 and "cannot be admin" in too_high.output
    revoked = await run(db_engine, "keys", "revoke", row["key_id"])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    async with db_engine.connect() as conn:
        actions = [r.action for r in (await conn.execute(select(AuditEntry.__table__)
                                                         .order_by(AuditEntry.__table__.c.id))).all()]
    assert actions == ["user.add", "key.create", "key.revoke"]


async def test_password_login_for_the_console_checks_argon2_and_the_user_s_state(db_engine):
    async with db_engine.begin() as conn:
        await users.add_user(conn, "dave", "agent", "a long passphrase")
        ok = await users.authenticate(conn, "dave", "a long passphrase")
        wrong = await users.authenticate(conn, "dave", "a long passphrasE")
        nobody = await users.authenticate(conn, "eve", "a long passphrase")
        await users.set_user(conn, "dave", disabled=True)
        disabled = await users.authenticate(conn, "dave", "a long passphrase")
    assert ok is not None and (ok.user, ok.role, ok.key_id) == ("dave", Role.AGENT, None)
    assert wrong is None and nobody is None and disabled is None


async def test_a_short_password_is_refused(db_engine):
    res = await run(db_engine, "users", "add", "frank", "--role", "agent", "--password-stdin", input="short\n")
    assert res.exit_code == 1 and "at least 10 characters" in res.output


async def test_lowering_a_user_s_role_lowers_their_keys(db_engine):
    await run(db_engine, "users", "add", "gina", "--role", "admin")
    await run(db_engine, "keys", "create", "--user", "gina", "--name", "k")
    res = await run(db_engine, "users", "set", "gina", "--role", "agent")
    assert "1 key(s) lowered to agent" in res.output
    listed = await run(db_engine, "keys", "list", "--json")
    assert [k["role"] for k in json.loads(listed.stdout)] == ["agent"]
