"""Discrete-event pacing simulator: a campaign's calls and agents on a simulated clock.

Drives the same pure ``agi.rules.pacing.calls_to_start`` the originator uses (and, for comparison,
baseline pacers written from VICIdial's and Issabel's source). No sockets, seeded.
``scripts/bench_pacing.py`` runs it over profiles and seeds and prints the table; ``dialer pacing
simulate`` runs it for one campaign (``compare_modes``) so an admin picks a mode before dialing.

model: profiles, the pacer's view, a shift's figures; pacers: ours and the baselines; shift: the
discrete-event run (``simulate``); compare: the what-if for one campaign.
"""

from agi.pacing_sim.compare import ModeResult, compare_modes
from agi.pacing_sim.model import PROFILES, Pacer, Profile, ShiftResult, SimView
from agi.pacing_sim.pacers import (
    IssabelPredictor,
    OurMode,
    VicidialAdaptive,
    make_pacers,
)
from agi.pacing_sim.shift import DAY, simulate

__all__ = [
    "DAY", "PROFILES", "IssabelPredictor", "ModeResult", "OurMode", "Pacer", "Profile", "ShiftResult", "SimView",
    "VicidialAdaptive", "compare_modes", "make_pacers", "simulate",
]  # fmt: skip
