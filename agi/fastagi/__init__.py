"""FastAGI: wire protocol, async channel API, script routing and the TCP server (no call logic here)."""

from __future__ import annotations

from agi.fastagi.channel import DTMF_KEYS, AGIChannel, MenuResult, Timeouts
from agi.fastagi.errors import (
    AGIAppError,
    AGIConnectionClosed,
    AGIError,
    AGIException,
    AGIHangup,
    AGIInvalidCommand,
    AGIProtocolError,
    AGIResultHangup,
    AGITimeout,
    AGIUnknownError,
    AGIUsageError,
)
from agi.fastagi.protocol import AGIRequest, Reply
from agi.fastagi.routing import AGICall, Flow, Router, polite_hangup
from agi.fastagi.server import FastAGIServer

__all__ = [
    "AGIAppError", "AGICall", "AGIChannel", "AGIConnectionClosed", "AGIError", "AGIException",
    "AGIHangup", "AGIInvalidCommand", "AGIProtocolError", "AGIRequest", "AGIResultHangup",
    "AGITimeout", "AGIUnknownError", "AGIUsageError", "DTMF_KEYS", "FastAGIServer", "Flow", "MenuResult",
    "Reply", "Router", "Timeouts", "polite_hangup",
]
