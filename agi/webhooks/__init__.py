"""Webhooks: a campaign's URL receives each attempt's final result as signed JSON.

Nothing here runs on a call's path. The delivery worker (``worker``, inside `dialer web`)
scans for newly final attempts of hooked campaigns by a cursor and fills the outbox table
itself (``outbox``), then delivers what is due with retries and backoff: the outbox and the
cursor live in the database, so a restart loses nothing. Signing and the retry schedule are
pure (``signing``).
"""
