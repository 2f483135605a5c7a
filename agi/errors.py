"""The error every admin surface raises for bad input: the CLI shows its message as it is.

It lives on its own so that the admin use cases, the reports, the importer and the CLI can all
raise and catch it without importing one another.
"""

from __future__ import annotations


class AdminError(Exception):
    """A user-facing error: the message says what is wrong and what to do."""
