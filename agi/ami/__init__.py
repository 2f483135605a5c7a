"""AMI client: the originator's session to Asterisk (see agi.ami.client for the API)."""

from agi.ami.client import (
    AMIClient,
    OriginateResult,
    attempt_id_from_uniqueid,
    backoff_delay,
)
from agi.ami.errors import (
    AMIActionError,
    AMIAuthError,
    AMIConnectError,
    AMIConnectionLost,
    AMIError,
    AMINotConnected,
    AMITimeout,
)

__all__ = [
    "AMIClient",
    "OriginateResult",
    "attempt_id_from_uniqueid",
    "backoff_delay",
    "AMIActionError",
    "AMIAuthError",
    "AMIConnectError",
    "AMIConnectionLost",
    "AMIError",
    "AMINotConnected",
    "AMITimeout",
]
