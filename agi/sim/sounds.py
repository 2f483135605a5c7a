"""Prompt lengths: how long each sound file plays, in the 8 kHz samples AGI reports as endpos."""

from __future__ import annotations

SAMPLE_RATE = 8000  # endpos is in 8 kHz samples (slin/ulaw prompts)

# Prompt lengths in 8 kHz samples of the sounds the traces play (their endpos); others last
# DEFAULT_SOUND_SECONDS.
SOUNDS: dict[str, int] = {
    "beep": 3404,  # agi-session-human-nokeypress.txt
    "hello-world": 11234,  # agi-session-machine-waitforsilence.txt
    "please-try-call-later": 17330,  # agi-session-queue-timeout.txt
}
DEFAULT_SOUND_SECONDS = 3.0
# Prompts that do not exist (EXEC Playback -> PLAYBACKSTATUS=FAILED, as agi-session-playback-getdata-invalidkey.txt)
MISSING_SOUND_PREFIXES = ("no-such", "nosuch", "missing")


def sound_samples(name: str) -> int | None:
    """Length of a prompt in samples (``a&b`` plays both); None if a file does not exist."""
    total = 0
    for part in name.split("&"):
        base = part.rsplit("/", 1)[-1]
        if not base or base.startswith(MISSING_SOUND_PREFIXES):
            return None
        total += SOUNDS.get(base, int(DEFAULT_SOUND_SECONDS * SAMPLE_RATE))
    return total
