"""What-if for one campaign (``dialer pacing simulate``): each mode and ratio over a few seeded shifts."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from agi.outcomes import CampaignMode
from agi.pacing_sim.model import Profile
from agi.pacing_sim.pacers import OurMode
from agi.pacing_sim.shift import simulate


@dataclass(frozen=True)
class ModeResult:
    """One mode and ratio over several seeds: medians, and the worst seed where it matters."""

    mode: str
    ratio: float
    seeds: int
    occupancy: float
    occupancy_worst: float
    drop_rate: float
    drop_rate_worst: float
    worst_hour_drop_rate: float  # median over the seeds of each seed's worst rolling hour
    connects_per_agent_hour: float
    lines_p95: int  # highest over the seeds
    lines_max: int
    over_cap: bool  # some seed's drop rate over the cap

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def compare_modes(
    profile: Profile,
    ratios: list[float],
    seeds: int = 5,
    progress: Callable[[int, int], None] | None = None,
) -> list[ModeResult]:
    """Progressive at each ratio, then predictive (at the profile's ratio), ``seeds`` shifts each."""
    plans = [(CampaignMode.PROGRESSIVE, r) for r in ratios] + [(CampaignMode.PREDICTIVE, profile.ratio)]
    total, done = len(plans) * seeds, 0
    out = []
    for mode, ratio in plans:
        runs = []
        for seed in range(1, seeds + 1):
            runs.append(simulate(profile.scaled(ratio=ratio), OurMode(mode), seed))
            done += 1
            if progress:
                progress(done, total)
        occ = [r.occupancy for r in runs]
        drop = [r.drop_rate for r in runs]
        out.append(ModeResult(
            mode=mode.value, ratio=ratio, seeds=seeds,
            occupancy=statistics.median(occ), occupancy_worst=min(occ),
            drop_rate=statistics.median(drop), drop_rate_worst=max(drop),
            worst_hour_drop_rate=statistics.median(r.worst_hour_drop_rate for r in runs),
            connects_per_agent_hour=statistics.median(r.connects_per_agent_hour for r in runs),
            lines_p95=max(r.p95_lines_used for r in runs), lines_max=max(r.max_lines_used for r in runs),
            over_cap=max(drop) > profile.drop_cap_pct / 100.0,
        ))
    return out
