"""The regulations' numbers, once, each with its citation.

US: the FTC Telemarketing Sales Rule, 16 CFR 310.4 (its call abandonment safe harbor and its
calling hours); the UK regulator (Ofcom) sets the same 3 % over 24 hours. Everything that
enforces or validates one of these imports it from here.
"""

from __future__ import annotations

import datetime as dt

# 16 CFR 310.4(b)(4)(i): abandoned calls at most 3 % of calls answered by a person, per campaign,
# measured over a 30-day period (Ofcom: over 24 hours).
MAX_DROP_RATE_PCT = 3.0
DROP_WINDOW_US_HOURS = 30 * 24
DROP_WINDOW_UK_HOURS = 24

# 16 CFR 310.4(b)(4)(ii): an unanswered call rings at least 15 seconds or four rings before the
# dialer disconnects it.
MIN_RING_TIMEOUT_S = 15

# 16 CFR 310.4(b)(4)(iii): a person not connected to a sales representative hears a recorded
# message (who calls, a number to call back) within 2 seconds of their completed greeting.
MAX_SECONDS_TO_DROP_MESSAGE = 2

# 16 CFR 310.4(c): no calls before 8:00 a.m. or after 9:00 p.m. at the called person's location.
CALLING_HOURS = (dt.time(8, 0), dt.time(21, 0))
