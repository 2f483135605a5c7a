"""Roles, the permissions each one grants, and the principal a request acts as (pure: no I/O).

A role grants a fixed set of permissions (GRANTS, the one table of who may do what);
an API key carries a role no higher than its user's and may be scoped to some campaigns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(str, enum.Enum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls(str(text).strip().lower())
        except ValueError:
            raise ValueError(f"unknown role {text!r}: choose one of {', '.join(r.value for r in cls)}") from None

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.AGENT: 0, Role.SUPERVISOR: 1, Role.ADMIN: 2}


class Permission(str, enum.Enum):
    CAMPAIGNS_READ = "campaigns.read"  # list, show
    CAMPAIGNS_RUN = "campaigns.run"  # start, stop, schedule
    CAMPAIGNS_WRITE = "campaigns.write"  # create, update, assign to dialers, cancel
    CONTACTS_READ = "contacts.read"
    CONTACTS_WRITE = "contacts.write"  # add, batch add, update, delete
    DNC_CHECK = "dnc.check"
    DNC_ADD = "dnc.add"
    DNC_REMOVE = "dnc.remove"
    REPORTS_READ = "reports.read"
    DISPOSE = "attempts.dispose"  # an agent's disposition of a call
    WEBHOOKS = "webhooks.manage"
    AUDIT_READ = "audit.read"


_AGENT = frozenset({Permission.CONTACTS_READ, Permission.DNC_CHECK, Permission.DNC_ADD, Permission.DISPOSE})
_SUPERVISOR = _AGENT | {
    Permission.CAMPAIGNS_READ, Permission.CAMPAIGNS_RUN, Permission.CONTACTS_WRITE, Permission.REPORTS_READ,
}
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: _AGENT,
    Role.SUPERVISOR: frozenset(_SUPERVISOR),
    Role.ADMIN: frozenset(Permission),
}


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user, with a role, through a key (or a console session: key None)."""

    user: str
    role: Role
    campaigns: frozenset[int] | None = None  # the key's campaign scope; None = every campaign
    key_id: str | None = None
    key_name: str | None = None

    def may(self, permission: Permission) -> bool:
        return permission in GRANTS[self.role]

    def sees(self, campaign_id: int) -> bool:
        return self.campaigns is None or campaign_id in self.campaigns

    @property
    def actor(self) -> str:
        """For the audit log: the user, and the key when there is one (never its secret)."""
        if self.key_id is None:
            return self.user
        return f"{self.user} (key {self.key_name} {self.key_id})"
