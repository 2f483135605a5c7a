"""Log set-up for the long-running commands: plain lines, or JSON lines with the attempt id as a field.

Call-path log lines pass ``extra={"attempt": id}`` (see ``attempt_extra``) so a log pipeline can
follow one call across the originator and the FastAGI server.
"""

from __future__ import annotations

import json
import logging
import sys

PLAIN = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def attempt_extra(attempt_id: str) -> dict:
    return {"attempt": attempt_id}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        attempt = getattr(record, "attempt", None)
        if attempt:
            out["attempt"] = attempt
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup(level: str | int, fmt: str = "plain") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(PLAIN))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level if isinstance(level, int) else getattr(logging, str(level).upper(), logging.INFO))
