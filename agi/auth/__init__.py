"""Who may do what: users with roles, their passwords (argon2) and API keys.

Shared by every front door of ``dialer web``: the public API authenticates API keys
(agi.auth.keys), the console of the next issue logs users in with a password
(agi.auth.users.authenticate); both end in a ``Principal`` whose role grants permissions
(agi.auth.roles, a pure table).
"""
