"""The errors a flow may see: pyst2's AGI exception classes, plus ours as subclasses of them.

Catch ``AGIHangup`` for "the person is gone" (it covers ``AGIResultHangup`` and
``AGIConnectionClosed``), ``AGIError`` for everything the protocol can raise.
"""

from __future__ import annotations

from asterisk.agi import (  # pyst2: the names AGI users already know
    AGIAppError,
    AGIError,
    AGIException,
    AGIHangup,
    AGIInvalidCommand,
    AGIResultHangup,
    AGIUnknownError,
    AGIUsageError,
)

__all__ = [
    "AGIAppError",
    "AGIConnectionClosed",
    "AGIError",
    "AGIException",
    "AGIHangup",
    "AGIInvalidCommand",
    "AGIProtocolError",
    "AGIResultHangup",
    "AGITimeout",
    "AGIUnknownError",
    "AGIUsageError",
]


class AGIConnectionClosed(AGIHangup):
    """Asterisk closed the socket (AGIEXITONHANGUP=yes, or the session ended): nothing more can be sent."""


class AGITimeout(AGIError, TimeoutError):
    """A command got no reply within its timeout; its late reply will be discarded, not misread."""


class AGIProtocolError(AGIError):
    """The peer sent something that is not FastAGI (bad header block, unparsable reply)."""
