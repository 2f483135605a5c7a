"""AMI client errors: which ones mean "nothing was sent" and which mean "outcome unknown"."""

from __future__ import annotations


class AMIError(Exception):
    """Any AMI client failure."""


class AMIAuthError(AMIError):
    """Asterisk refused the login (wrong user/secret, ACL). Fatal: never retried."""


class AMIConnectError(AMIError):
    """No AMI session could be opened (refused, unreachable, no banner/login reply in time)."""


class AMINotConnected(AMIError):
    """The action was refused locally because there is no live session: nothing was sent."""


class AMIActionError(AMIError):
    """Asterisk answered the action with `Response: Error` (its `Message` is in the text)."""

    def __init__(self, message: str, *, response: dict | None = None) -> None:
        super().__init__(message)
        self.response = response or {}


class _InFlight(AMIError):
    """Sent, but no complete reply: the action may or may not have taken effect."""

    def __init__(self, message: str, *, action_id: str = "", queued: bool = False) -> None:
        super().__init__(message)
        self.action_id = action_id
        # for Originate: Asterisk acknowledged it ("Originate successfully queued"), so a call may exist
        self.queued = queued


class AMIConnectionLost(_InFlight):
    """The session dropped after the action was sent and before its reply was complete."""


class AMITimeout(_InFlight, TimeoutError):
    """No complete reply within the timeout; the session is checked (Ping) and dropped if silent."""
