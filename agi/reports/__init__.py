"""Reports over the attempts table, one module each: the campaign summary (docs/outcomes.md's three
rows, drop rate, pace: campaign_summary), agent occupancy (occupancy), the call log (calls), and the
contact listing used by ``contacts list/export`` (contacts).

Every count is a COUNT over ``attempts``; the labels and the grouping come from agi.outcomes (the
call log's class too: agi.outcomes.call_class, with the target/repeat length class from
agi.rules.target). Agent occupancy comes from the agent time the originators store
(``campaign_agent_time``). This package's names are the reports' API: ``reports.summary(conn, ...)``.
"""

from __future__ import annotations

from agi.reports.calls import CALL_LOG_COLUMNS, CallRow, call_log, parse_result_filter
from agi.reports.campaign_summary import EXTRA_CELLS, Summary, summary, tally
from agi.reports.contacts import list_contacts
from agi.reports.occupancy import agent_occupancy, agent_seconds

__all__ = [
    "CALL_LOG_COLUMNS", "CallRow", "EXTRA_CELLS", "Summary", "agent_occupancy", "agent_seconds", "call_log",
    "list_contacts", "parse_result_filter", "summary", "tally",
]
