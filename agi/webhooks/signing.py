"""The webhook wire rules (pure): the HMAC-SHA256 signature header, the message body, the retry schedule."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from typing import Any
from collections.abc import Mapping

SIGNATURE_HEADER = "X-Dialer-Signature"  # "sha256=" + hex HMAC-SHA256(secret, raw body)
DELIVERY_HEADER = "X-Dialer-Delivery"  # the outbox row id: the same on every retry of one message
EVENT_HEADER = "X-Dialer-Event"
EVENT = "attempt.final"

FIRST_RETRY = dt.timedelta(seconds=10)
MAX_RETRY = dt.timedelta(hours=1)
MAX_TRIES = 15  # 10 s, 20 s, 40 s ... then hourly: about 7 hours before a message is marked failed


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute the signature over the raw body and compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def retry_delay(tries: int) -> dt.timedelta | None:
    """The wait after the ``tries``-th failed try (1 = the first); None: give up (failed)."""
    if tries >= MAX_TRIES:
        return None
    return min(FIRST_RETRY * (2 ** (tries - 1)), MAX_RETRY)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (dt.datetime, dt.date)) else value


def body(campaign: Mapping[str, Any], attempt: Mapping[str, Any], contact: Mapping[str, Any]) -> str:
    """The JSON message of one final attempt (stored in the outbox and sent byte for byte)."""
    return json.dumps({
        "event": EVENT,
        "campaign": dict(campaign),
        "attempt": {k: _iso(v) for k, v in attempt.items()},
        "contact": dict(contact),
    }, separators=(",", ":"), ensure_ascii=False)
