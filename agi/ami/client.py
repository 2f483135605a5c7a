"""The AMI client the originator uses: login, Originate, events, QueueSummary, CoreShowChannels.

Built on panoramisk 1.4 (agi/ami/protocol.py lists what it gets wrong and what we override);
agi/ami/session.py adds what it lacks: a timeout on every action, a Ping watchdog that drops a
silent peer, reconnection with capped exponential backoff and jitter, a fatal AMIAuthError for a
refused login, and an immediate AMINotConnected for an action sent while there is no session.
This module adds the actions (agi/ami/queues.py parses a queue's agents).

Usage (the API other parts rely on)::

    client = AMIClient(host, port, username, secret, action_timeout=5.0, originate_timeout=60.0,
                       ping_interval=5.0, backoff=(0.5, 30.0))
    client.on_connect = cb()             # after every successful login, the first one included
    client.on_disconnect = cb(exc)       # a live session was lost (exc: why); called once more
                                         # with the AMIAuthError if a reconnect's login is refused
    unsubscribe = client.on_event("Hangup", cb)   # cb(dict); "*" = every event
    await client.connect(retry_for=0.0)  # AMIAuthError (bad login, not retried) or
                                         # AMIConnectError (unreachable after retry_for seconds)
    result = await client.originate(channel=..., context=..., exten=..., priority=1,
                                    timeout_ms=25000, caller_id=..., channel_id=attempt_id,
                                    variables={...}, action_id=None)   # -> OriginateResult
    await client.queue_summary(queue=None) -> list[dict]   # ints for the counters
    await client.queue_snapshot(queue) -> QueueSnapshot    # QueueSummary + QueueStatus (agi.ami.queues)
    await client.core_show_channels() -> list[dict]
    await client.ping() -> dict;  await client.action({...}) -> list[dict];  await client.close()
    client.connected -> bool;  await client.wait_connected(timeout=None) -> bool
    client.fatal -> AMIAuthError | None;  client.connections -> int (logins so far)

Errors: AMINotConnected = nothing was sent (safe to retry later); AMITimeout / AMIConnectionLost
= sent, outcome unknown (`.queued` tells whether Asterisk acknowledged an Originate);
AMIActionError = Asterisk answered `Response: Error`.

Event order: callbacks run in wire order, inside the reader; an originate() caller resumes a
moment later, so Hangup callbacks of a failed call can run before its originate() returns.
Events that answer a pending action (OriginateResponse, EventList items) go to that action only;
an OriginateResponse whose originate() already gave up (timeout, or sent on a previous session)
is delivered to the "OriginateResponse" callbacks instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agi.ami.errors import AMIActionError
from agi.ami.events import message_dict
from agi.ami.queues import QueueSnapshot
from agi.ami.session import Session, backoff_delay  # noqa: F401  (re-exported: part of this API)
from agi.ids import attempt_id_from_uniqueid  # noqa: F401  (re-exported: part of this API)

# QueueSummary counters (Asterisk app_queue manager_queues_summary) returned as ints
QUEUE_SUMMARY_INTS = ("LoggedIn", "Available", "Callers", "HoldTime", "TalkTime", "LongestHoldTime")


@dataclass(frozen=True)
class OriginateResult:
    """The OriginateResponse event of one Originate (docs/outcomes.md, AMI)."""

    response: str  # "Success" | "Failure"
    reason: int  # 0 failure, 1 hung up before answer, 3 ring timeout, 4 answered, 5 busy, 8 congestion
    channel: str  # real channel name on Success, the dial string as sent on Failure
    uniqueid: str | None  # = the ChannelId sent
    raw: dict = field(repr=False)

    @property
    def success(self) -> bool:
        return self.response == "Success"

    @classmethod
    def from_event(cls, event: dict) -> OriginateResult:
        try:
            reason = int(event.get("Reason", "0"))
        except (TypeError, ValueError):
            reason = 0
        return cls(
            response=str(event.get("Response", "")),
            reason=reason,
            channel=str(event.get("Channel", "")),
            uniqueid=event.get("Uniqueid") or None,
            raw=event,
        )


class AMIClient(Session):
    """The AMI session with the actions the originator uses; see the module docstring for the API."""

    async def queue_summary(self, queue: str | None = None) -> list[dict]:
        """One dict per queue (QueueSummary events), counters as ints; [] for an unknown queue."""
        headers = {"Action": "QueueSummary"}
        if queue:
            headers["Queue"] = queue
        rows = []
        for item in (await self.action(headers))[1:]:
            if item.get("Event") != "QueueSummary":
                continue
            for key in QUEUE_SUMMARY_INTS:
                if key in item:
                    try:
                        item[key] = int(item[key])
                    except (TypeError, ValueError):
                        pass
            rows.append(item)
        return rows

    async def queue_snapshot(self, queue: str) -> QueueSnapshot:
        """QueueSummary then QueueStatus of ``queue``: its agents now (all zero for an unknown queue)."""
        summary = await self.queue_summary(queue)
        status = await self.action({"Action": "QueueStatus", "Queue": queue})
        return QueueSnapshot.from_events(queue, summary, status)

    async def core_show_channels(self) -> list[dict]:
        """One dict per channel (CoreShowChannel events: Channel, Uniqueid, Linkedid, ...)."""
        return [m for m in (await self.action({"Action": "CoreShowChannels"}))[1:]
                if m.get("Event") == "CoreShowChannel"]

    async def originate(
        self,
        *,
        channel: str,
        context: str,
        exten: str,
        priority: int = 1,
        timeout_ms: int = 25000,
        caller_id: str | None = None,
        channel_id: str | None = None,
        variables: dict[str, Any] | None = None,
        action_id: str | None = None,
    ) -> OriginateResult:
        """Send Originate (always `Async: true`) and wait for its OriginateResponse event.

        Waits up to action_timeout for Asterisk's ack, then up to
        max(originate_timeout, timeout_ms/1000 + action_timeout) for the OriginateResponse.
        `channel_id` becomes the channel's Uniqueid (Local legs: `<id>;2`). Never re-sent: on
        AMITimeout/AMIConnectionLost `exc.queued` says whether Asterisk had acknowledged it."""
        headers: dict[str, Any] = {
            "Action": "Originate",
            "Channel": channel,
            "Context": context,
            "Exten": exten,
            "Priority": str(priority),
            "Timeout": str(int(timeout_ms)),
            "Async": "true",  # without it there is no OriginateResponse (and panoramisk breaks)
        }
        if caller_id:
            headers["CallerID"] = caller_id
        if channel_id:
            headers["ChannelId"] = channel_id
        if variables:
            headers["Variable"] = [f"{k}={v}" for k, v in variables.items()]
        if action_id:
            headers["ActionID"] = action_id
        proto, action = self._send(headers)
        try:
            first = await self._wait(proto, action.first, self.action_timeout, "Originate", action)
            if first.get("Response") == "Error":
                raise AMIActionError(f"{self.where}: Originate to {channel} refused: {first.get('Message', '')}",
                                     response=message_dict(first))
            limit = max(self.originate_timeout, timeout_ms / 1000 + self.action_timeout)
            reply = await self._wait(proto, action.future, limit, f"Originate to {channel} (OriginateResponse)",
                                     action)
        finally:
            if not action.future.done():
                proto.responses.pop(action.id, None)
        for message in reply if isinstance(reply, list) else [reply]:
            if message.get("Event") == "OriginateResponse":
                return OriginateResult.from_event(message_dict(message))
        raise AMIActionError(f"{self.where}: Originate to {channel}: reply without OriginateResponse: "
                             f"{[message_dict(m) for m in (reply if isinstance(reply, list) else [reply])]}")
