"""The attempt id that travels with a call: Originate ChannelId = the channel's Uniqueid."""

from __future__ import annotations


def attempt_id_from_uniqueid(uniqueid: str) -> str:
    """The attempt id of a channel: `<ChannelId>;2` (a Local channel's second leg) -> `<ChannelId>`."""
    base, sep, leg = uniqueid.strip().rpartition(";")
    return base if sep and leg.isdigit() else uniqueid.strip()
