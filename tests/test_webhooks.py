"""Webhooks: each final attempt of a hooked campaign reaches a real local HTTP receiver, signed,
from the outbox; a failing receiver is retried with backoff; a restarted worker loses nothing."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from agi import importer
from agi.cli import main
from agi.db.models import WebhookDelivery, utcnow
from agi.outcomes import Result
from agi.webhooks import outbox, signing
from agi.webhooks.worker import WebhookWorker
from test_web_api import make_campaign
from web_support import call


class Receiver:
    """An HTTP server on a free loopback port answering each POST with the next status of ``answers``
    (the last one repeats), keeping what it received."""

    def __init__(self, answers=(200,)) -> None:
        self.answers = list(answers)
        self.received: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append((dict(self.headers), body))
                status = outer.answers.pop(0) if len(outer.answers) > 1 else outer.answers[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?token=abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def attempts(self) -> list[str]:
        return [json.loads(body)["attempt"]["id"] for _h, body in self.received]


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(answers=(200,)) -> Receiver:
        made.append(Receiver(answers))
        return made[-1]

    yield make
    for r in made:
        r.close()


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


async def _campaign_with_contacts(engine, n: int) -> tuple[int, list[int]]:
    cid = await make_campaign(engine)
    async with engine.begin() as conn:
        report = await importer.import_records(conn, cid, [{"phone": f"20255{i:05d}"} for i in range(n)])
    return cid, [report.contact_ids[i] for i in range(n)]


async def _hook(engine, cid: int, url: str, at: dt.datetime | None = None) -> dict:
    async with engine.begin() as conn:
        return await outbox.add_hook(conn, cid, url, now=at)


async def _deliveries(engine) -> list:
    d = WebhookDelivery.__table__
    async with engine.connect() as conn:
        return (await conn.execute(select(d).order_by(d.c.id))).all()


def test_signature_is_hmac_sha256_of_the_raw_body_and_checks_in_constant_time():
    body = b'{"event":"attempt.final"}'
    header = signing.sign("whsec_x", body)
    assert header == "sha256=" + __import__("hmac").new(b"whsec_x", body, "sha256").hexdigest()
    assert signing.verify("whsec_x", body, header)
    assert not signing.verify("whsec_y", body, header)
    assert not signing.verify("whsec_x", body + b" ", header)
    assert not signing.verify("whsec_x", body, None)


@pytest.mark.parametrize("tries, wait", [
    (1, dt.timedelta(seconds=10)), (2, dt.timedelta(seconds=20)), (3, dt.timedelta(seconds=40)),
    (9, dt.timedelta(seconds=2560)), (10, dt.timedelta(hours=1)), (14, dt.timedelta(hours=1)),
    (15, None), (16, None),
])
def test_a_failed_try_waits_twice_as_long_as_the_last_up_to_an_hour_then_gives_up(tries, wait):
    assert signing.retry_delay(tries) == wait


async def test_each_final_attempt_reaches_the_receiver_once_signed_and_in_progress_ones_wait(db_engine, receiver):
    cid, contacts = await _campaign_with_contacts(db_engine, 4)
    before = await call(db_engine, cid, contacts[0], Result.BUSY, at=utcnow() - dt.timedelta(hours=1))
    rx = receiver()
    hook = await _hook(db_engine, cid, rx.url)
    t = utcnow()
    busy = await call(db_engine, cid, contacts[1], Result.BUSY, at=t)
    live = await call(db_engine, cid, contacts[2], Result.LIVE_ANSWER, at=t, talk=70)
    ringing = await call(db_engine, cid, contacts[3], Result.NO_ANSWER, at=t, finish=False)
    stop = asyncio.Event()
    worker = WebhookWorker(db_engine, interval=0.05)
    task = asyncio.create_task(worker.run(stop))
    for _ in range(200):
        if len(rx.received) >= 2:
            break
        await asyncio.sleep(0.05)
    from agi.db import attempts as db

    async with db_engine.begin() as conn:
        await db.finish_attempt(conn, ringing, Result.NO_ANSWER, ended_at=utcnow())
    for _ in range(200):
        if len(rx.received) >= 3:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # nothing more comes
    stop.set()
    await task
    assert sorted(rx.attempts()) == sorted([busy, live, ringing]) and before not in rx.attempts()
    for headers, body in rx.received:
        assert signing.verify(hook["secret"], body, headers[signing.SIGNATURE_HEADER])
        assert headers[signing.EVENT_HEADER] == "attempt.final" and headers["Content-Type"] == "application/json"
    message = next(json.loads(b) for _h, b in rx.received if json.loads(b)["attempt"]["id"] == live)
    assert message["campaign"] == {"id": cid, "name": "spring"}
    assert (message["attempt"]["result"], message["attempt"]["talk_seconds"]) == ("live_answer", 70)
    assert message["contact"]["id"] == contacts[2]
    assert {d.status for d in await _deliveries(db_engine)} == {"delivered"}


async def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(db_engine, receiver):
    cid, contacts = await _campaign_with_contacts(db_engine, 1)
    rx = receiver([500, 503, 200])
    clock = Clock()
    await _hook(db_engine, cid, rx.url, at=clock.now - dt.timedelta(minutes=1))
    aid = await call(db_engine, cid, contacts[0], Result.BUSY, at=clock.now - dt.timedelta(seconds=30))
    worker = WebhookWorker(db_engine, clock=clock)
    tried = [await worker.tick()]
    clock.advance(5)
    tried.append(await worker.tick())  # not due yet: 10 s after the first failure
    clock.advance(6)
    tried.append(await worker.tick())
    clock.advance(19)
    tried.append(await worker.tick())  # not due: 20 s after the second
    clock.advance(2)
    tried.append(await worker.tick())
    assert tried == [1, 0, 1, 0, 1]
    assert rx.attempts() == [aid] * 3
    [d] = await _deliveries(db_engine)
    assert (d.status, d.tries, d.last_status) == ("delivered", 3, 200)
    assert len({body for _h, body in rx.received}) == 1  # the same message each time


async def test_a_receiver_that_never_recovers_ends_failed_listed_and_can_be_retried(db_engine, receiver):
    cid, contacts = await _campaign_with_contacts(db_engine, 1)
    rx = receiver([500])
    clock = Clock()
    await _hook(db_engine, cid, rx.url, at=clock.now - dt.timedelta(minutes=1))
    await call(db_engine, cid, contacts[0], Result.BUSY, at=clock.now - dt.timedelta(seconds=30))
    worker = WebhookWorker(db_engine, clock=clock, retry_delay=lambda n: dt.timedelta(seconds=1) if n < 2 else None)
    await worker.tick()
    clock.advance(2)
    await worker.tick()
    [d] = await _deliveries(db_engine)
    assert (d.status, d.tries, d.last_error) == ("failed", 2, "HTTP 500")
    url = db_engine.url.render_as_string(hide_password=False)
    listed = await asyncio.to_thread(CliRunner().invoke, main, ["--db", url, "webhooks", "deliveries", "--status",
                                                                "failed", "--json"])
    assert [row["id"] for row in json.loads(listed.output)] == [d.id]
    shown = await asyncio.to_thread(CliRunner().invoke, main, ["--db", url, "webhooks", "list"])
    assert "token=abc" not in shown.output and "?***" in shown.output
    again = await asyncio.to_thread(CliRunner().invoke, main, ["--db", url, "webhooks", "retry"])
    assert "1 failed message(s) queued again" in again.output
    rx.answers = [200]
    await worker.tick()
    assert [d.status for d in await _deliveries(db_engine)] == ["delivered"]


async def test_a_worker_restarted_mid_backlog_delivers_every_attempt_and_none_twice(db_engine, receiver):
    n = 40
    cid, contacts = await _campaign_with_contacts(db_engine, n)
    rx = receiver()
    clock = Clock()
    await _hook(db_engine, cid, rx.url, at=clock.now - dt.timedelta(minutes=5))
    ids = [await call(db_engine, cid, c, Result.NO_ANSWER, at=clock.now - dt.timedelta(minutes=2)) for c in contacts]
    first = WebhookWorker(db_engine, clock=clock, concurrency=2)  # 8 messages a tick
    assert await first.tick() == 8
    # the next worker crashes right after claiming its messages (nothing sent, nothing recorded)
    async with db_engine.begin() as conn:
        lost = await outbox.claim_due(conn, clock.now, 5, dt.timedelta(seconds=60))
    assert len(lost) == 5
    second = WebhookWorker(db_engine, clock=clock, concurrency=4)  # a restarted process: fresh state
    while await second.tick():
        pass
    assert len(rx.received) == n - 5  # the crashed claims wait for their lease to run out
    clock.advance(61)
    while await second.tick():
        pass
    assert sorted(rx.attempts()) == sorted(ids)  # every attempt, none twice
    assert {d.status for d in await _deliveries(db_engine)} == {"delivered"}


async def test_an_attempt_whose_final_write_commits_late_is_still_found(db_engine, receiver):
    cid, contacts = await _campaign_with_contacts(db_engine, 2)
    rx = receiver()
    clock = Clock()
    await _hook(db_engine, cid, rx.url, at=clock.now - dt.timedelta(minutes=5))
    late = await call(db_engine, cid, contacts[0], Result.BUSY, at=clock.now - dt.timedelta(seconds=40), finish=False)
    newer = await call(db_engine, cid, contacts[1], Result.BUSY, at=clock.now - dt.timedelta(seconds=5))
    worker = WebhookWorker(db_engine, clock=clock)
    await worker.tick()
    from agi.db import attempts as db

    async with db_engine.begin() as conn:  # ended 30 s before the newest one taken, committed after it
        await db.finish_attempt(conn, late, Result.BUSY, ended_at=clock.now - dt.timedelta(seconds=30))
    await worker.tick()
    assert rx.attempts() == [newer, late]
