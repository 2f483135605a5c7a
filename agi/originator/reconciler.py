"""Nothing left hanging: attempts whose call is gone get a final result (``other``) and a retry.

Runs at start (after a crash or SIGKILL every open attempt of this dialer is suspect) and
every 30 s. A call is gone when Asterisk has no channel for it (CoreShowChannels) or it
outlived the longest possible call. Claims that never became an attempt go back to the queue.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

from agi.ami.errors import AMIError
from agi.db import attempts as db
from agi.logs import attempt_extra
from agi.db.claim import release_claim
from agi.originator import store
from agi.originator.calls import Call
from agi.outcomes import Result

if TYPE_CHECKING:  # pragma: no cover
    from agi.originator.dialer import Originator

log = logging.getLogger("agi.originator.reconciler")

MAX_CALL_S = 4 * 3600  # no call of ours lasts longer: an agent call included
RETRY_AFTER = dt.timedelta(minutes=5)


async def live_channel_ids(orig: "Originator", wait: float) -> set[str] | None:
    """Attempt ids Asterisk has a channel for; None if it cannot be asked now."""
    loop = asyncio.get_running_loop()
    end = loop.time() + wait
    while not orig.ami.connected and loop.time() < end:
        await asyncio.sleep(0.1)
    if not orig.ami.connected:
        return None
    try:
        channels = await orig.ami.core_show_channels()
    except AMIError as exc:
        log.warning("reconciler: CoreShowChannels failed: %s", exc)
        return None
    ids = set()
    for ch in channels:
        for key in ("Uniqueid", "Linkedid"):
            if ch.get(key):
                ids.add(ch[key].split(";", 1)[0])
    return ids


async def reconcile(orig: "Originator", *, startup: bool = False) -> int:
    """Resolve this dialer's dangling attempts and claims; returns how many attempts it finished."""
    now = orig.clock()
    when = dt.datetime.fromtimestamp(now, dt.timezone.utc)
    async with orig.engine.begin() as conn:
        for membership_id in await store.orphan_claims(conn, orig.name):
            await release_claim(conn, membership_id, next_attempt_at=None, now=when)
            log.info("reconciler: claim of membership %s released (no attempt was started)", membership_id)
        rows = await store.open_attempts(conn, orig.name)
    suspects = [r for r in rows if r.id not in orig.tracker.calls
                or now - orig.tracker.calls[r.id].sent_at > MAX_CALL_S]
    if not suspects:
        return 0
    alive = await live_channel_ids(orig, wait=10.0 if startup else 0.0)
    if alive is None:
        log.warning("reconciler: %d open attempt(s), Asterisk cannot be asked now; later", len(suspects))
        return 0
    finished = 0
    for r in suspects:
        tracked = orig.tracker.calls.get(r.id)
        if r.id in alive and (tracked is None or now - tracked.sent_at <= MAX_CALL_S):
            if tracked is None:  # a call of a previous run, still up: follow it to its Hangup
                orig.tracker.add(Call(r.id, r.campaign_id, r.membership_id or 0, r.number or "",
                                      sent_at=now, answered_at=now))
            continue
        why = ("its call outlived the longest possible call" if r.id in alive
               else "its call is gone (no channel in Asterisk): the dialer or the FastAGI server died")
        async with orig.engine.begin() as conn:
            if r.answered_at is not None:  # answered and never reported: counted as a dropped person
                if await db.finish_unreported(conn, r.id, ended_at=when, detail=f"reconciler: {why}"):
                    finished += 1
            elif await db.finish_attempt(conn, r.id, Result.OTHER, ended_at=when, detail=f"reconciler: {why}"):
                await store.reschedule_after_reconcile(conn, r.id, when + RETRY_AFTER)
                finished += 1
        orig.tracker.remove(r.id)
        log.warning("reconciler: attempt %s -> other (%s)", r.id, why, extra=attempt_extra(r.id))
    orig.stats["reconciled"] += finished
    return finished
