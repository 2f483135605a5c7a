"""The webhook delivery worker: fill the outbox from newly final attempts, deliver what is due.

Runs as a task inside `dialer web`, never on a call's path. One tick: one transaction fills
the outbox (agi.webhooks.outbox.fill), one claims due messages with a lease, then each is
POSTed (several at once, each with a timeout) and its outcome recorded. A 2xx is delivered;
anything else (another status, a timeout, a refused connection, a redirect) is retried after
the backoff of agi.webhooks.signing until it is marked failed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from agi.db.models import utcnow
from agi.webhooks import outbox, signing

log = logging.getLogger("agi.webhooks")

USER_AGENT = "asterisk-dialer-webhooks/1"


class WebhookWorker:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        interval: float = 1.0,
        concurrency: int = 8,
        timeout: float = 10.0,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        retry_delay: Callable[[int], dt.timedelta | None] = signing.retry_delay,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.interval = interval
        self.concurrency = concurrency
        self.timeout = timeout
        self.lease = lease
        self.retry_delay = retry_delay
        self.clock = clock
        self._client: httpx.AsyncClient | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a failing tick (database down) is logged and retried."""
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
            self._client = client
            while not stop.is_set():
                busy = False
                try:
                    busy = await self.tick() > 0
                except Exception:  # noqa: BLE001 - keep delivering after a transient failure
                    log.exception("webhook tick failed; trying again in %.0f s", self.interval)
                if not busy:
                    try:
                        await asyncio.wait_for(stop.wait(), self.interval)
                    except TimeoutError:
                        pass
            self._client = None

    async def tick(self) -> int:
        """Fill the outbox, then try every due message once; returns how many were tried."""
        async with self.engine.begin() as conn:
            await outbox.fill(conn, self.clock())
        async with self.engine.begin() as conn:
            due = await outbox.claim_due(conn, self.clock(), self.concurrency * 4, self.lease)
        if not due:
            return 0
        gate = asyncio.Semaphore(self.concurrency)

        async def one(message: outbox.Due) -> None:
            async with gate:
                await self.deliver(message)

        await asyncio.gather(*(one(m) for m in due))
        return len(due)

    async def deliver(self, message: outbox.Due) -> str:
        body = message.payload.encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.SIGNATURE_HEADER: signing.sign(message.secret, body),
            signing.DELIVERY_HEADER: str(message.id),
            signing.EVENT_HEADER: signing.EVENT,
        }
        status: int | None = None
        error: str | None = None
        client = self._client or httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        try:
            response = await client.post(message.url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        finally:
            if client is not self._client:
                await client.aclose()
        ok = status is not None and 200 <= status < 300
        async with self.engine.begin() as conn:
            state = await outbox.record_try(conn, message, ok=ok, status=status, error=error, now=self.clock(),
                                            retry_delay=self.retry_delay)
        if not ok:
            log.warning("webhook %s delivery %s to %s: %s (try %d, now %s)", message.webhook_id, message.id,
                        outbox.shown_url(message.url), error or f"HTTP {status}", message.tries + 1, state)
        return state
