"""The console's session: a signed cookie (HMAC-SHA256 over its JSON), HttpOnly, SameSite=Lax, with
the user, their role and a CSRF token that every form sends back; and the login throttle.

Nothing secret is in the cookie (it is signed, not encrypted): the user's name, role, the CSRF
token and when it was issued. A cookie older than ``MAX_AGE`` or with a bad signature is no session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import Response

COOKIE = "dialer_console"
MAX_AGE = 12 * 3600  # a working day and some: then log in again
CSRF_FIELD = "csrf"


@dataclass
class ConsoleSession:
    csrf: str
    user: str | None = None
    role: str | None = None
    issued: float = field(default_factory=time.time)

    @property
    def logged_in(self) -> bool:
        return self.user is not None


class Signer:
    """Signs and reads the session cookie with one secret (``dialer web --session-secret``)."""

    def __init__(self, secret: str, *, secure: bool = False) -> None:
        self.key = hashlib.sha256(("dialer-console:" + secret).encode()).digest()
        self.secure = secure

    def _mac(self, body: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self.key, body, hashlib.sha256).digest()).decode().rstrip("=")

    def dumps(self, s: ConsoleSession) -> str:
        body = base64.urlsafe_b64encode(json.dumps(
            {"u": s.user, "r": s.role, "c": s.csrf, "t": int(s.issued)}, separators=(",", ":")).encode()).decode()
        return f"{body}.{self._mac(body.encode())}"

    def loads(self, text: str | None, now: float | None = None) -> ConsoleSession | None:
        if not text or "." not in text:
            return None
        body, mac = text.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body.encode())):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        if (now or time.time()) - float(data.get("t", 0)) > MAX_AGE:
            return None
        return ConsoleSession(csrf=str(data["c"]), user=data.get("u"), role=data.get("r"), issued=float(data["t"]))

    def read(self, request: Request) -> ConsoleSession:
        """The request's session, or a new anonymous one (with its own CSRF token)."""
        return self.loads(request.cookies.get(COOKIE)) or ConsoleSession(csrf=secrets.token_urlsafe(24))

    def write(self, response: Response, s: ConsoleSession) -> None:
        response.set_cookie(COOKIE, self.dumps(s), max_age=MAX_AGE, httponly=True, samesite="lax",
                            secure=self.secure, path="/")

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=self.secure)


def csrf_ok(s: ConsoleSession, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(s.csrf, str(sent))


class LoginThrottle:
    """Failed logins per user name and per client address: after ``limit`` failures within
    ``window`` seconds, further tries are refused until the oldest one leaves the window."""

    def __init__(self, limit: int = 5, window: float = 300.0, clock=time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._fails: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        now = self.clock()
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def wait(self, *keys: str) -> float:
        """Seconds until a try is allowed again (0: now)."""
        waits = [self._recent(k)[0] + self.window - self.clock() for k in keys if len(self._recent(k)) >= self.limit]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        for k in keys:
            self._recent(k).append(self.clock())

    def succeeded(self, *keys: str) -> None:
        for k in keys:
            self._fails.pop(k, None)
