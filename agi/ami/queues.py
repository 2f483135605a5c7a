"""One agent queue as Asterisk shows it: who is logged in, free, on a call, paused, wrapping up.

Built from the events of two AMI actions (tests/traces/ami-queuesummary.txt): QueueSummary
(app_queue manager_queues_summary) counts LoggedIn, Available (not paused, not in use, not in
wrap-up) and Callers waiting; QueueStatus lists each QueueMember with InCall and Paused. A
logged-in agent who is neither available, on a call nor paused is counted in after-call work.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable


def _count(event: dict | None, field: str) -> int:
    value = (event or {}).get(field, 0)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{(event or {}).get('Event', 'AMI')} {field}: {value!r} is not a number") from None


def _flag(event: dict, field: str) -> bool:
    return str(event.get(field, "0")) == "1"


@dataclass(frozen=True)
class QueueSnapshot:
    """One queue's agents at one moment. All zero for a queue Asterisk does not know."""

    queue: str
    logged_in: int = 0
    available: int = 0  # free to take a call now
    callers: int = 0  # callers waiting in the queue
    in_call: int = 0  # members on a queue call (QueueMember InCall: 1)
    paused: int = 0  # paused members not on a call

    @property
    def in_acw(self) -> int:
        """Logged in, yet neither available, on a call nor paused: in after-call work (wrap-up).
        A member ringing for a waiting caller counts here too (QueueStatus has no ringing flag
        besides Status, which is 2 "in use" for both)."""
        return max(0, self.logged_in - self.available - self.in_call - self.paused)

    @classmethod
    def from_events(cls, queue: str, summary: Iterable[dict], status: Iterable[dict]) -> QueueSnapshot:
        """The snapshot of ``queue`` from QueueSummary and QueueStatus events (other queues' events
        and other event types are skipped; counters may be ints or the wire's strings)."""
        row = next((e for e in summary if e.get("Event") == "QueueSummary" and e.get("Queue") == queue), None)
        members = [m for m in status if m.get("Event") == "QueueMember" and m.get("Queue", queue) == queue]
        return cls(
            queue=queue,
            logged_in=_count(row, "LoggedIn"),
            available=_count(row, "Available"),
            callers=_count(row, "Callers"),
            in_call=sum(1 for m in members if _flag(m, "InCall")),
            paused=sum(1 for m in members if _flag(m, "Paused") and not _flag(m, "InCall")),
        )
