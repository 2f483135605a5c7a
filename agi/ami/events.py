"""AMI events to the callbacks that asked for them, each run so that its failure stays its own.

A callback may be a plain function or return an awaitable (run as a task, kept until done);
an exception is logged, never propagated into the reader that delivered the event.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("agi.ami.client")  # one logger for the client, whichever module of it speaks

EventCallback = Callable[[dict], Any]


def message_dict(message) -> dict:
    """A panoramisk Message as a plain dict with the wire's header names."""
    store = getattr(message, "_store", None)  # panoramisk's CaseInsensitiveDict: lowered -> (key, value)
    out = dict(store.values()) if isinstance(store, dict) else dict(message.items())
    if not out.get("content"):
        out.pop("content", None)
    return out


class Callbacks:
    def __init__(self, where: str) -> None:
        self.where = where
        self._by_name: dict[str, list[EventCallback]] = {}
        self._tasks: set[asyncio.Task] = set()

    def on(self, name: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event_dict)`` for each event ``name`` (case-insensitive; "*" = all);
        returns a function that unsubscribes."""
        key = name.lower()
        self._by_name.setdefault(key, []).append(callback)

        def unsubscribe() -> None:
            callbacks = self._by_name.get(key, [])
            if callback in callbacks:
                callbacks.remove(callback)

        return unsubscribe

    def wants(self, name: str) -> bool:
        """Someone listens to event ``name`` (or to every event)."""
        return bool(self._by_name.get(name.lower()) or self._by_name.get("*"))

    def dispatch(self, message) -> None:
        """One unsolicited event (a panoramisk Message) to its callbacks, in subscription order."""
        name = message.get("Event")
        if not isinstance(name, str):
            log.warning("%s: skipped an event without a single Event header: %r", self.where, message)
            return
        callbacks = self._by_name.get(name.lower(), []) + self._by_name.get("*", [])
        if callbacks:
            event = message_dict(message)
            for callback in callbacks:
                self.call(callback, event)

    def call(self, callback: Callable | None, *args) -> None:
        if callback is None:
            return
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                self.spawn(result)
        except Exception:
            log.exception("%s: callback %r failed", self.where, callback)

    def spawn(self, awaitable) -> asyncio.Task:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background task failed", self.where, exc_info=task.exception())

    async def close(self) -> None:
        """Cancel the tasks still running."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
