"""The reconciler alone, given its collaborators (database, AMI session, call tracker, clock):
an open attempt whose call Asterisk no longer has gets ``other`` and a retry, a claim that never
became an attempt goes back to the queue, and a call this dialer follows is left alone."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from agi.ami.client import AMIClient
from agi.db.attempts import get_attempt, start_attempt
from agi.db.claim import claim_due
from agi.db.models import Attempt
from agi.originator.calls import Call, CallTracker
from agi.originator.clock import Clock
from agi.originator.reconciler import RETRY_AFTER, Reconciler
from agi.outcomes import ContactState, Result
from agi.settings import Secret
from db_seed import T0, membership, seed_campaign
from test_ami_client_peer import TracePeer


async def test_the_reconciler_ends_lost_calls_releases_orphan_claims_and_leaves_followed_calls(db_engine):
    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 3)
        lost, followed, orphan = await claim_due(conn, camp, "box", 3, T0)
        ids = {}
        for c in (lost, followed):  # the orphan's attempt was never started (the dialer died in between)
            ids[c.membership_id] = await start_attempt(
                conn, c.membership_id, campaign_id=camp, contact_id=c.contact_id, dialer="box",
                number=c.number, attempt_no=1, now=T0)
    now = T0 + dt.timedelta(seconds=60)
    tracker = CallTracker()
    tracker.add(Call(ids[followed.membership_id], camp, followed.membership_id, followed.number,
                     sent_at=T0.timestamp()))
    stats = {"reconciled": 0}
    peer = await TracePeer().start()  # its CoreShowChannels has no channel of these attempts
    ami = AMIClient("127.0.0.1", peer.port, "dialer", Secret("dialer-secret"), action_timeout=2.0)
    try:
        await ami.connect()
        reconciler = Reconciler(db_engine, ami, Clock(now=now.timestamp), tracker, stats, dialer_name="box")
        assert await reconciler.reconcile() == 1
        assert await reconciler.reconcile() == 0  # once
    finally:
        await ami.close()
        await peer.stop()
    assert stats["reconciled"] == 1
    async with db_engine.connect() as conn:
        a = Attempt.__table__
        ended = (await conn.execute(select(a).where(a.c.id == ids[lost.membership_id]))).one()
        assert ended.result == Result.OTHER.value and ended.detail.startswith("reconciler: its call is gone")
        retried = await membership(conn, lost.membership_id)
        assert retried.state == ContactState.RETRY_SCHEDULED.value
        assert retried.next_attempt_at.replace(tzinfo=dt.timezone.utc) == now + RETRY_AFTER
        assert (await get_attempt(conn, ids[followed.membership_id])).result is None
        released = await membership(conn, orphan.membership_id)
        assert released.state == ContactState.PENDING.value and released.claimed_by is None
    assert set(tracker.calls) == {ids[followed.membership_id]}


async def test_a_call_the_originator_finishes_while_the_reconciler_reads_is_no_false_alarm(db_engine, caplog):
    """The reconciler reads the open attempts, then compares them with the calls in memory: a call
    settled in between (its row read open, gone from the tracker by the comparison) is not lost."""
    from sqlalchemy import event

    from agi.db.attempts import finish_attempt

    async with db_engine.begin() as conn:
        camp, _ = await seed_campaign(conn, 1)
        [c] = await claim_due(conn, camp, "box", 1, T0)
        attempt_id = await start_attempt(conn, c.membership_id, campaign_id=camp, contact_id=c.contact_id,
                                         dialer="box", number=c.number, attempt_no=1, now=T0)
    tracker = CallTracker()
    tracker.add(Call(attempt_id, camp, c.membership_id, c.number, sent_at=T0.timestamp()))

    def settled_meanwhile(conn, cursor, statement, *args) -> None:
        # the open attempts are read: the originator's settle of this call lands now (its row was
        # read open; the call leaves the tracker, its final write right after)
        if "attempts.queued_at" in statement and "attempts.result IS NULL" in statement:
            tracker.remove(attempt_id)

    event.listen(db_engine.sync_engine, "after_cursor_execute", settled_meanwhile)
    stats = {"reconciled": 0}
    peer = await TracePeer().start()  # Asterisk has no channel of it any more: the call ended
    ami = AMIClient("127.0.0.1", peer.port, "dialer", Secret("dialer-secret"), action_timeout=2.0)
    try:
        await ami.connect()
        reconciler = Reconciler(db_engine, ami, Clock(now=lambda: T0.timestamp() + 5), tracker, stats, dialer_name="box")
        with caplog.at_level("WARNING", logger="agi.originator.reconciler"):
            assert await reconciler.reconcile() == 0
    finally:
        event.remove(db_engine.sync_engine, "after_cursor_execute", settled_meanwhile)
        await ami.close()
        await peer.stop()
    async with db_engine.begin() as conn:  # the originator's own result, as it writes it
        assert await finish_attempt(conn, attempt_id, Result.BUSY, ended_at=T0 + dt.timedelta(seconds=5))
        assert (await get_attempt(conn, attempt_id)).result == Result.BUSY.value
    assert stats["reconciled"] == 0 and "reconciler" not in caplog.text
