"""PostgreSQL fast path for the writes every call makes: raw psycopg 3, prepared, few round trips.

Same guarantees as ``agi.db.attempts`` (the final result set once, the disposition once, the
membership moved once by ``agi.rules.retry.next_step`` under its row lock), which it reuses:
the retry rule's membership UPDATE, the DNC insert and the service-error count are that
module's SQLAlchemy statements compiled once for PostgreSQL; the statements that merge several
of its writes into one round trip are written here. SQLAlchemy costs about 0.3 ms of CPU per
statement on this path; a prepared psycopg statement a fraction, and a round trip about 0.1 ms.

Per call: the answered mark (one statement, returning what the final write needs), the
person's choice or the queue's routing when something follows them on the call (one statement
each), and the final write (one statement when this process saw the call answered; otherwise,
or when its assumptions fail, a transaction of two round trips). Calls reaching the same write
together share its round trip (group commit). ``FlowContext`` uses it when its engine is
PostgreSQL; SQLite and everything else stay Core.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass
from types import SimpleNamespace

import psycopg
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from psycopg.types.datetime import TimestampLoader
from sqlalchemy import Integer, bindparam, event, text
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.engine import URL

from agi.db import attempts as db
from agi.db.models import UTCDateTime
from agi.outcomes import ContactState, Disposition, Result, Routing
from agi.rules.retry import RetryPolicy

_UTC_COLUMN = UTCDateTime()
KNOWN_MAX = 100_000  # live calls remembered for the one-statement final write (FastPath._known)

# A one-statement write that finds its assumption wrong fails on purpose (a cast error carrying
# this text) so that nothing of it is kept; the caller then writes the two-step way.
ASSUMED_WRONG = "dialer: a one-statement write assumed wrong; written the two-step way"


def _assumed_wrong(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.errors.InvalidTextRepresentation) and ASSUMED_WRONG in str(exc)


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    """Aware in, naive UTC out: how UTCDateTime stores it."""
    return _UTC_COLUMN.process_bind_param(value, None)


class _AwareUTCLoader(TimestampLoader):
    """``timestamp`` columns hold naive UTC (UTCDateTime): read them back aware."""

    def load(self, data):
        value = super().load(data)
        return value.replace(tzinfo=dt.timezone.utc) if isinstance(value, dt.datetime) else value


def _compiled(stmt) -> tuple[str, dict]:
    """A Core statement of agi.db.attempts as PostgreSQL SQL text and its constant parameters."""
    compiled = stmt.compile(dialect=_DIALECT)
    mine = {name: None for name, param in compiled.binds.items() if param.value is None}  # bound per call
    state = compiled.construct_expanded_state(mine)
    return state.statement, state.parameters


_DIALECT = pg_psycopg.dialect()
_MOVE = {stmt: _compiled(stmt) for stmt in (db._MOVE_FINAL, db._MOVE_AGAIN)}
_SERVICE_ERRORS = _compiled(db._SERVICE_ERRORS)
_ADD_DNC = _compiled(db._add_dnc_stmt("postgresql"))

_INFO = ("id, campaign_id, contact_id, membership_id, dialer, number, attempt_no, result, routing, "
         "disposition, callback_at, answered_at, ended_at, amd_status, agent")

GET_ATTEMPT = f"SELECT {_INFO} FROM attempts WHERE id = %(aid)s::varchar"

# db.mark_answered in one statement: the attempt's first-report fields, then the membership
# dialing -> in_call if the attempt is still open and is the membership's current one; with the
# membership's counter and the campaign's retry policy, for the final write (FINISH_AND_MOVE).
MARK_ANSWERED = f"""
WITH a AS (
    UPDATE attempts SET
        originated_at = COALESCE(originated_at, %(at)s::timestamp),
        answered_at = COALESCE(answered_at, %(at)s::timestamp),
        amd_status = COALESCE(amd_status, %(amd_status)s::varchar),
        amd_cause = COALESCE(amd_cause, %(amd_cause)s::varchar)
    WHERE id = %(aid)s::varchar
    RETURNING {_INFO}
), m AS (
    UPDATE campaign_contacts cc SET state = %(to_state)s::varchar, updated_at = %(at)s::timestamp
    FROM a
    WHERE cc.id = a.membership_id AND a.result IS NULL AND cc.last_attempt_id = a.id
      AND cc.state = %(from_state)s::varchar
)
SELECT a.*, cc.attempts AS m_attempts, camp.retry_rules AS m_rules, camp.max_attempts AS m_max
FROM a LEFT JOIN campaign_contacts cc ON cc.id = a.membership_id LEFT JOIN campaigns camp ON camp.id = a.campaign_id
"""

# What db.rule_move reads of the attempt (agi.db.attempts._RULE_COLUMNS), as ``t``
_RULE_INPUTS = "t.id, t.campaign_id, t.membership_id, t.number, t.result, t.routing, t.disposition, t.callback_at, t.ended_at"


def _with_policy(when: str) -> str:
    """The rows of CTE ``a`` with, when ``when`` holds, their membership locked FOR NO KEY UPDATE
    (attempt first, then membership: the Core path's order) and the campaign's retry policy."""
    return f"""
SELECT a.*, p.attempts, p.retry_rules, p.max_attempts
FROM a LEFT JOIN LATERAL (
    SELECT cc.attempts, camp.retry_rules, camp.max_attempts
    FROM campaign_contacts cc JOIN campaigns camp ON camp.id = a.campaign_id
    WHERE cc.id = a.membership_id AND ({when})
    FOR NO KEY UPDATE OF cc
) p ON true
"""


# db.set_ivr_keys + db.set_disposition (first wins) + db.finish_attempt (result set once,
# bookkeeping fills empty fields) in one UPDATE of the attempt, locked first so the values
# before it come back too (PostgreSQL 15 has no RETURNING OLD); then, in the same statement
# and in the same order as the Core path (attempt, then membership), the membership locked
# FOR NO KEY UPDATE with the campaign's retry policy, when the retry rule will have to run.
_FINISH_CTES = f"""
WITH old AS (
    SELECT id, result, disposition FROM attempts WHERE id = %(aid)s::varchar FOR UPDATE
), a AS (
    UPDATE attempts t SET
        ivr_keys = COALESCE(%(keys)s::varchar, t.ivr_keys),
        disposition = CASE WHEN t.disposition IS NULL AND %(disposition)s::varchar IS NOT NULL
                           THEN %(disposition)s::varchar ELSE t.disposition END,
        callback_at = CASE WHEN t.disposition IS NULL AND %(disposition)s::varchar IS NOT NULL
                           THEN %(callback_at)s::timestamp ELSE t.callback_at END,
        result = COALESCE(t.result, %(result)s::varchar),
        charged = CASE WHEN t.result IS NULL THEN %(charged)s::boolean ELSE t.charged END,
        ended_at = CASE WHEN t.result IS NULL OR %(fill)s::boolean
                        THEN COALESCE(t.ended_at, %(ended_at)s::timestamp) ELSE t.ended_at END,
        hangup_cause = COALESCE(t.hangup_cause, %(hangup_cause)s::integer),
        originate_reason = COALESCE(t.originate_reason, %(originate_reason)s::integer),
        talk_seconds = COALESCE(t.talk_seconds, %(talk_seconds)s::integer),
        detail = COALESCE(t.detail, %(detail)s::text)
    FROM old
    WHERE t.id = old.id
    RETURNING {_RULE_INPUTS}, old.result AS old_result, old.disposition AS old_disposition
)"""
FINISH = _FINISH_CTES + _with_policy(
    "a.old_result IS NULL OR (a.old_disposition IS NULL AND %(disposition)s::varchar IS NOT NULL)")

# The common final write in ONE statement: when this process saw the call answered (the
# membership's counter and the campaign's retry policy came back with the answered mark) and
# knows what the attempt holds, the retry rule's step (agi.rules.retry via db.rule_move) is
# worked out before the write and the membership moved in the same statement, guarded: the
# result set here, the attempt as assumed, counter and policy unchanged (re-checked on the row's
# newest version if another writer got there first). When the rule would have moved the
# membership and the guard stopped it, or the rule must run again (a new choice on an attempt
# someone else made final), the statement fails on purpose (ASSUMED_WRONG), nothing of it is
# kept, and the write runs the two-step way (FINISH, then the rule): all or nothing either way.
_MOVE_IF_AS_ASSUMED = _compiled(db._MOVE_FINAL.where(
    db._cc.c.attempts == bindparam("x_attempts", type_=Integer),
    text("EXISTS (SELECT 1 FROM a JOIN campaigns camp ON camp.id = a.campaign_id"
         " WHERE a.old_result IS NULL AND a.result = CAST(:x_result AS varchar)"
         " AND a.routing IS NOT DISTINCT FROM CAST(:x_routing AS varchar)"
         " AND a.disposition IS NOT DISTINCT FROM CAST(:x_disposition AS varchar)"
         " AND a.callback_at IS NOT DISTINCT FROM CAST(:x_callback_at AS timestamp)"
         " AND COALESCE(camp.retry_rules::jsonb, 'null'::jsonb) = CAST(:x_rules AS jsonb)"
         " AND camp.max_attempts = CAST(:x_max AS integer))"),
).returning(db._cc.c.id))
FINISH_AND_MOVE = _FINISH_CTES + f""", m AS (
{_MOVE_IF_AS_ASSUMED[0]}
)
SELECT a.*, CASE WHEN (
    a.old_result IS NULL AND NOT EXISTS (SELECT 1 FROM m) AND EXISTS (
        SELECT 1 FROM campaign_contacts cc
        WHERE cc.id = a.membership_id AND (cc.last_attempt_id = a.id OR cc.last_attempt_id IS NULL))
) OR (
    a.old_result IS NOT NULL AND a.old_disposition IS NULL AND %(disposition)s::varchar IS NOT NULL
) THEN CAST(a.id || ': {ASSUMED_WRONG}' AS integer) END AS assumed_wrong
FROM a
"""


# The choice and the routing are written while the person waits for the next command: one
# statement, one round trip, autocommit. When the attempt is already final (the h extension's
# flow got there first) the retry rule must run again with them, as db._reapply_rule does: the
# statement then fails on purpose and the write runs again in a transaction with the rule
# (the *_THEN_RULE form, then REAPPLY, which reads the attempt as it is, under its locks).

# db.set_ivr_keys + db.set_disposition (first wins; opt-out: the number on the DNC list)
# [+ db.mark_waiting_agent while the attempt is open and the membership's current one]
_CHOOSE = f"""
WITH old AS (
    SELECT id, disposition FROM attempts WHERE id = %(aid)s::varchar FOR UPDATE
), a AS (
    UPDATE attempts t SET
        ivr_keys = %(keys)s::varchar,
        disposition = COALESCE(t.disposition, %(disposition)s::varchar),
        callback_at = CASE WHEN t.disposition IS NULL THEN %(callback_at)s::timestamp ELSE t.callback_at END
    FROM old
    WHERE t.id = old.id
    RETURNING {_RULE_INPUTS}, old.disposition AS old_disposition
), w AS (
    UPDATE campaign_contacts cc SET state = %(waiting)s::varchar, updated_at = %(now)s::timestamp
    FROM a
    WHERE %(waiting)s::varchar IS NOT NULL AND cc.id = a.membership_id AND a.result IS NULL
      AND cc.last_attempt_id = a.id AND cc.state IN (%(dialing)s::varchar, %(in_call)s::varchar)
), d AS (
    INSERT INTO dnc (number, source, added_at)
    SELECT a.number, %(dnc_source)s::varchar, %(now)s::timestamp FROM a
    WHERE %(disposition)s::varchar = %(opt_out)s::varchar AND a.old_disposition IS NULL AND a.number IS NOT NULL
    ON CONFLICT DO NOTHING
)
SELECT a.id, a.result, a.old_disposition{{check}} FROM a
"""
CHOOSE = _CHOOSE.format(check=f""",
    CASE WHEN a.result IS NOT NULL AND a.old_disposition IS NULL
         THEN CAST(a.id || ': {ASSUMED_WRONG}' AS integer) END AS assumed_wrong""")
CHOOSE_THEN_RULE = _CHOOSE.format(check="")

# db.set_routing: the first report wins
_ROUTE = """
UPDATE attempts SET
    routing = %(routing)s::varchar,
    agent = COALESCE(agent, %(agent)s::varchar),
    caller_abandoned = %(abandoned)s::boolean,
    queue_status = %(queue_status)s::varchar
WHERE id = %(aid)s::varchar AND routing IS NULL
RETURNING id, result{check}
"""
ROUTE = _ROUTE.format(check=f""",
    CASE WHEN result IS NOT NULL THEN CAST(id || ': {ASSUMED_WRONG}' AS integer) END AS assumed_wrong""")
ROUTE_THEN_RULE = _ROUTE.format(check="")

# db._reapply_rule's inputs: the attempt as it is now and, if final, its membership locked
# (attempt first, then membership: the Core path's order) with the campaign's retry policy
REAPPLY = f"""
WITH a AS (
    SELECT {_RULE_INPUTS} FROM attempts t WHERE t.id = %(aid)s::varchar FOR UPDATE
)""" + _with_policy("a.result IS NOT NULL")


@dataclass(frozen=True)
class _Final:
    """One call's final write, waiting to go out (FastPath.finish)."""

    attempt_id: str
    disposition: Disposition | None
    ended_at: dt.datetime
    now: dt.datetime
    params: dict  # FINISH's; FINISH_AND_MOVE's too when the step is worked out before


def _settle(fut: asyncio.Future, value=None, *, exc: BaseException | None = None) -> None:
    if not fut.done():  # its caller may have been cancelled meanwhile
        fut.set_result(value) if exc is None else fut.set_exception(exc)


async def _in_one_round_trip(conn: psycopg.AsyncConnection, sql: str, params: list[dict]) -> list:
    """``sql`` once per parameter set, one row each, in one round trip: autocommit, one Sync, so
    together they are one implicit transaction (all kept or none). One alone skips psycopg's
    pipeline mode, which costs about 0.15 ms more than a plain statement here."""
    if len(params) == 1:
        return [await (await conn.execute(sql, params[0], prepare=True)).fetchone()]
    async with conn.pipeline() as pipeline:
        cursors = [await conn.execute(sql, p, prepare=True) for p in params]
        await pipeline.sync()
        return [await cur.fetchone() for cur in cursors]


def _params(sql_and_constants: tuple[str, dict], values: dict) -> tuple[str, dict]:
    sql, constants = sql_and_constants
    return sql, {**constants, **{k: _naive(v) if isinstance(v, dt.datetime) else v for k, v in values.items()}}


class FastPath:
    """The per-call attempt writes on PostgreSQL, over a small pool of psycopg connections.

    Each method is one transaction (autocommit for single statements; ``finish`` shares one
    between calls finishing together); safe to call from any number of concurrent calls.
    ``close()`` when done (idle connections are also closed on the engine's dispose).
    """

    def __init__(self, url: URL | str, size: int = 40, batch: int = 64) -> None:
        if isinstance(url, str):
            from sqlalchemy.engine import make_url
            url = make_url(url)
        self.conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.size = size
        self._idle: list[psycopg.AsyncConnection] = []
        self._slots = asyncio.Semaphore(size)
        self.batch = batch  # writes of calls at the same step together share a transaction (0: off)
        self._pending: dict = {}  # runner -> [(attempt id, item, future)]
        self._in_flight: set = set()  # runners with a group out; the writes arriving meanwhile wait
        # attempt id -> what this process knows of a live call's attempt since its answered mark
        # (membership counter, retry policy, routing/choice written since): FINISH_AND_MOVE's inputs
        self._known: OrderedDict[str, dict] = OrderedDict()
        self._tasks: set = set()

    @classmethod
    def for_engine(cls, engine, size: int = 40) -> "FastPath | None":
        """A fast path for ``engine`` if it is PostgreSQL (None otherwise), closed with the engine."""
        if engine.dialect.name != "postgresql":
            return None
        fast = cls(engine.url, size)
        event.listen(engine.sync_engine, "engine_disposed", lambda _engine: fast.drop_idle())
        return fast

    # --- the writes -----------------------------------------------------------------------

    async def get_attempt(self, attempt_id: str) -> db.AttemptInfo | None:
        row = await self._run(self._one, GET_ATTEMPT, {"aid": attempt_id})
        return None if row is None else db._info(row)

    async def mark_answered(self, attempt_id: str, at: dt.datetime, amd_status: str | None = None,
                            amd_cause: str | None = None) -> db.AttemptInfo | None:
        """db.mark_answered in one statement; calls answered together share a round trip."""
        params = {"aid": attempt_id, "at": _naive(at), "amd_status": amd_status, "amd_cause": amd_cause,
                  "to_state": ContactState.IN_CALL.value, "from_state": ContactState.DIALING.value}
        if self.batch:
            row = await self._submit(self._answer_all, attempt_id, params)
        else:
            [row] = await self._run(self._answer_all, [params])
        if row is None:
            return None
        if row.result is None and row.membership_id is not None and row.m_attempts is not None:
            self._know(attempt_id, attempts=row.m_attempts, rules=row.m_rules, max_attempts=row.m_max,
                       membership_id=row.membership_id, routing=row.routing, disposition=row.disposition,
                       callback_at=row.callback_at)
        return db._info(row)

    def _know(self, attempt_id: str, **facts) -> None:
        self._known[attempt_id] = facts
        while len(self._known) > KNOWN_MAX:  # calls that never reported: forget the oldest
            self._known.popitem(last=False)

    def _learn(self, attempt_id: str, written_here: bool, **facts) -> None:
        """A write of this process on a live call: what the attempt now holds, or (another
        writer got there first) that it is no longer known here."""
        known = self._known.get(attempt_id)
        if known is None:
            return
        if written_here:
            known.update(facts)
        else:
            del self._known[attempt_id]

    @staticmethod
    async def _answer_all(conn: psycopg.AsyncConnection, params: list[dict]) -> list:
        return await _in_one_round_trip(conn, MARK_ANSWERED, params)

    async def finish(
        self, attempt_id: str, result: Result, *, ended_at: dt.datetime, keys: str | None = None,
        disposition: Disposition | None = None, callback_at: dt.datetime | None = None,
        now: dt.datetime | None = None, hangup_cause: int | None = None,
        originate_reason: int | None = None, talk_seconds: int | None = None, detail: str | None = None,
    ) -> bool:
        """db.set_ivr_keys (``keys``), db.set_disposition (``disposition``, first wins) and
        db.finish_attempt, all or nothing; True if the result was set here.

        One statement (FINISH_AND_MOVE) when this process marked the call answered; else, or
        when its assumptions fail, one transaction of two round trips (FINISH, then the rule).
        Calls that finish together share the round trip (``batch``, group commit): their
        statements go out in one pipeline, one attempt at most once per group; if the shared
        transaction fails (a deadlock, one bad value) it is rolled back whole and each call's
        writes run again on their own (every write here is idempotent).
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        params = {
            "aid": attempt_id, "keys": None if keys is None else keys[:db.IVR_KEYS_MAX],
            "disposition": disposition.value if disposition else None, "callback_at": _naive(callback_at),
            "result": result.value, "charged": result.charged, "ended_at": _naive(ended_at),
            "fill": any(v is not None for v in (hangup_cause, originate_reason, talk_seconds, detail)),
            "hangup_cause": hangup_cause, "originate_reason": originate_reason,
            "talk_seconds": talk_seconds, "detail": detail,
        }

        assumed = self._assume(self._known.pop(attempt_id, None), attempt_id, result, disposition,
                               callback_at, ended_at)
        if assumed is not None:
            try:
                return await self._write(self._finish_assumed_all, attempt_id,
                                         _Final(attempt_id, disposition, ended_at, now, {**params, **assumed}))
            except psycopg.errors.InvalidTextRepresentation as exc:
                if not _assumed_wrong(exc):
                    raise
        return await self._write(self._finish_all, attempt_id, _Final(attempt_id, disposition, ended_at, now, params))

    async def _write(self, runner, attempt_id: str, item):
        if self.batch:
            return await self._submit(runner, attempt_id, item)
        [out] = await self._run(runner, [item])
        return out

    @staticmethod
    def _assume(known: dict | None, attempt_id: str, result: Result, disposition: Disposition | None,
                callback_at: dt.datetime | None, ended_at: dt.datetime) -> dict | None:
        """FINISH_AND_MOVE's parameters: the retry rule's step for the attempt as this final write
        will leave it, if this process knows it since the answered mark; None: the two-step way."""
        if known is None or result is Result.SERVICE_ERROR or disposition is Disposition.OPT_OUT:
            return None  # a service error's step counts earlier ones; an opt-out adds to the DNC list
        if known["disposition"] is not None:  # the choice made earlier on the call stands
            chosen, chosen_at = known["disposition"], known["callback_at"]
        elif disposition is not None:
            chosen, chosen_at = disposition.value, callback_at
        else:
            chosen, chosen_at = None, known["callback_at"]
        row = SimpleNamespace(id=attempt_id, membership_id=known["membership_id"], result=result.value,
                              routing=known["routing"], disposition=chosen, callback_at=chosen_at)
        policy = RetryPolicy.from_campaign(known["rules"], known["max_attempts"])
        _stmt, values = db.rule_move(row, policy, known["attempts"], ended_at, ended_at, counted_already=False)
        return _params(_MOVE_IF_AS_ASSUMED, {
            **values, "x_attempts": known["attempts"], "x_result": result.value, "x_routing": known["routing"],
            "x_disposition": chosen, "x_callback_at": chosen_at, "x_rules": json.dumps(known["rules"]),
            "x_max": known["max_attempts"],
        })[1]

    @staticmethod
    async def _finish_assumed_all(conn: psycopg.AsyncConnection, finals: list["_Final"]) -> list[bool]:
        """FINISH_AND_MOVE for several calls: one round trip, one implicit transaction (autocommit,
        one Sync): if one assumed wrong, none is kept and each runs again on its own (_write_batch)."""
        rows = await _in_one_round_trip(conn, FINISH_AND_MOVE, [f.params for f in finals])
        return [row is not None and row.old_result is None for row in rows]

    async def _finish_all(self, conn: psycopg.AsyncConnection, finals: list["_Final"]) -> list[bool]:
        """The final writes of several calls (distinct attempts) in one transaction, 2 round trips."""
        async with conn.pipeline(), conn.transaction():
            cursors = [await conn.execute(FINISH, f.params, prepare=True) for f in finals]
            rows = [await cur.fetchone() for cur in cursors]
            return [await self._after(conn, f, row) for f, row in zip(finals, rows)]

    async def _after(self, conn: psycopg.AsyncConnection, f: "_Final", row) -> bool:
        if row is None:
            return False
        set_here = row.old_result is None
        chosen_here = f.disposition is not None and row.old_disposition is None
        if chosen_here and f.disposition is Disposition.OPT_OUT and row.number:
            await conn.execute(*_params(_ADD_DNC, {
                "p_number": row.number, "p_source": db.DNC_SOURCE_OPT_OUT, "p_added_at": f.now,
            }), prepare=True)
        if set_here:  # db.finish_attempt -> db._apply_rule
            rule = (f.ended_at, f.ended_at, False)
        elif chosen_here and Result(row.result).dialed:  # db.set_disposition -> db._reapply_rule
            rule = (row.ended_at or f.now, f.now, True)
        else:
            rule = None
        if rule is not None and row.membership_id is not None and row.attempts is not None:
            await self._move(conn, row, *rule)
        return set_here

    async def choose(self, attempt_id: str, keys: str, disposition: Disposition,
                     callback_at: dt.datetime | None = None, *, now: dt.datetime,
                     waiting_agent: bool = False) -> bool:
        """db.set_ivr_keys + db.set_disposition (first wins; opt-out on the DNC list) [+
        db.mark_waiting_agent] in one statement (with the retry rule when the attempt is already
        final: a transaction); True if chosen here."""
        params = {"aid": attempt_id, "keys": keys[:db.IVR_KEYS_MAX], "disposition": disposition.value,
                  "callback_at": _naive(callback_at), "now": _naive(now),
                  "waiting": ContactState.WAITING_AGENT.value if waiting_agent else None,
                  "dialing": ContactState.DIALING.value, "in_call": ContactState.IN_CALL.value,
                  "opt_out": Disposition.OPT_OUT.value, "dnc_source": db.DNC_SOURCE_OPT_OUT}
        row = await self._one_or_with_rule(CHOOSE, CHOOSE_THEN_RULE, params, now,
                                           lambda r: r.old_disposition is None)
        chosen_here = row is not None and row.old_disposition is None
        self._learn(attempt_id, chosen_here, disposition=disposition.value, callback_at=callback_at)
        return chosen_here

    async def set_routing(self, attempt_id: str, routing: Routing, agent: str | None = None,
                          caller_abandoned: bool = False, *, queue_status: str | None = None,
                          now: dt.datetime) -> bool:
        """db.set_routing in one statement (with the retry rule when the attempt is already final:
        a transaction); True if set here."""
        params = {"aid": attempt_id, "routing": routing.value, "agent": agent,
                  "abandoned": bool(caller_abandoned), "queue_status": queue_status}
        row = await self._one_or_with_rule(ROUTE, ROUTE_THEN_RULE, params, now, lambda r: True)
        self._learn(attempt_id, row is not None, routing=routing.value)
        return row is not None

    async def _one_or_with_rule(self, one: str, then_rule: str, params: dict, now: dt.datetime, changed):
        try:
            return await self._run(self._one, one, params)
        except psycopg.errors.InvalidTextRepresentation as exc:
            if not _assumed_wrong(exc):
                raise
        return await self._run(self._write_then_rule, then_rule, params, now, changed)

    async def _write_then_rule(self, conn: psycopg.AsyncConnection, sql: str, params: dict, now: dt.datetime,
                               changed):
        """``sql``, then db._reapply_rule if it ``changed`` an attempt already final: one transaction."""
        async with conn.pipeline(), conn.transaction():
            row = await (await conn.execute(sql, params, prepare=True)).fetchone()
            if row is not None and row.result is not None and changed(row):
                rule = await (await conn.execute(REAPPLY, {"aid": params["aid"]}, prepare=True)).fetchone()
                if rule is not None and rule.result is not None and Result(rule.result).dialed \
                        and rule.membership_id is not None and rule.attempts is not None:
                    await self._move(conn, rule, rule.ended_at or now, now, True)
            return row

    # --- grouping the writes of calls that reach the same step together -----------------------

    async def _submit(self, runner, attempt_id: str, item):
        """``await runner(conn, [item, ...])``, grouped as a group commit does: a write goes out
        at once when no group of its kind is in flight; the ones that arrive meanwhile go out
        together as soon as it returns. At light load a call never waits for company; under
        load the groups grow by themselves."""
        fut = asyncio.get_running_loop().create_future()
        self._pending.setdefault(runner, []).append((attempt_id, item, fut))
        self._flush(runner)
        return await fut

    def _flush(self, runner) -> None:
        if runner in self._in_flight or not self._pending.get(runner):
            return
        batch, seen, later = [], set(), []
        for entry in self._pending.pop(runner):
            if entry[0] in seen or len(batch) >= self.batch:
                later.append(entry)  # one attempt once per transaction: its rule reads what the first wrote
            else:
                seen.add(entry[0])
                batch.append(entry)
        if later:
            self._pending[runner] = later
        self._in_flight.add(runner)
        task = asyncio.get_running_loop().create_task(self._write_batch(runner, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_batch(self, runner, batch) -> None:
        try:
            try:
                results = await self._run(runner, [item for _, item, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    return _settle(batch[0][2], exc=exc)
                # the shared transaction rolled back whole: each call's writes on their own
                for _, item, fut in batch:
                    try:
                        _settle(fut, (await self._run(runner, [item]))[0])
                    except Exception as one_exc:
                        _settle(fut, exc=one_exc)
                return
            for (_, _, fut), res in zip(batch, results):
                _settle(fut, res)
        finally:
            for _, _, fut in batch:
                if not fut.done():
                    fut.cancel()
            self._in_flight.discard(runner)
            self._flush(runner)  # the writes that arrived meanwhile

    @staticmethod
    async def _move(conn: psycopg.AsyncConnection, row, ended: dt.datetime, now: dt.datetime,
                    counted_already: bool) -> None:
        """db._apply_rule with the membership already locked and its policy read (FINISH)."""
        service_errors = 0
        if db.needs_service_errors(row):
            cur = await conn.execute(*_params(_SERVICE_ERRORS, {"p_membership": row.membership_id,
                                                                "p_aid": row.id}), prepare=True)
            service_errors = (await cur.fetchone())[0]
        policy = RetryPolicy.from_campaign(row.retry_rules, row.max_attempts)
        stmt, values = db.rule_move(row, policy, row.attempts, ended, now,
                                    counted_already=counted_already, service_errors=service_errors)
        await conn.execute(*_params(_MOVE[stmt], values), prepare=True)

    # --- connections ----------------------------------------------------------------------

    @staticmethod
    async def _one(conn: psycopg.AsyncConnection, sql: str, params: dict):
        return await (await conn.execute(sql, params, prepare=True)).fetchone()

    async def _connect(self) -> psycopg.AsyncConnection:
        conn = await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True, row_factory=namedtuple_row)
        conn.adapters.register_loader("timestamp", _AwareUTCLoader)
        return conn

    async def _run(self, fn, *args):
        """``await fn(conn, *args)`` on a pooled connection; once more on a fresh one if a
        pooled connection turns out dead (server restarted): every write here is idempotent."""
        async with self._slots:
            for retry in (False, True):
                reused = bool(self._idle)
                conn = self._idle.pop() if reused else await self._connect()
                try:
                    out = await fn(conn, *args)
                except psycopg.OperationalError:
                    await self._discard(conn)
                    if reused and not retry and conn.broken:
                        continue
                    raise
                except BaseException:
                    if conn.info.transaction_status == TransactionStatus.IDLE:
                        self._idle.append(conn)
                    else:
                        await self._discard(conn)
                    raise
                self._idle.append(conn)
                return out
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    async def _discard(conn: psycopg.AsyncConnection) -> None:
        with suppress(Exception):
            await conn.close()

    def drop_idle(self) -> None:
        """Close the idle connections now (sync: runs from the engine's dispose event)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            with suppress(Exception):
                conn.pgconn.finish()

    async def close(self) -> None:
        while self._tasks:  # final writes in flight finish first
            await asyncio.gather(*self._tasks, return_exceptions=True)
        idle, self._idle = self._idle, []
        for conn in idle:
            await self._discard(conn)
