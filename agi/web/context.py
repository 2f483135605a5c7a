"""What an endpoint works with: the caller (an authenticated, rate-limited API key with its
role and campaign scope), its transaction, the campaigns it may see, the audit log.

``require(permission)`` is the dependency every endpoint takes: 401 without a valid key,
429 over the key's rate, 403 when the key's role lacks the permission. A campaign outside
a key's scope answers 404, as if it did not exist.
"""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from collections.abc import AsyncIterator, Mapping

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from agi import audit
from agi.admin.campaigns import find_campaign
from agi.db.models import Campaign
from agi.errors import AdminError
from agi.auth import keys
from agi.auth.roles import Permission, Principal
from agi.web.errors import ApiError, not_found
from agi.web.limits import RateLimiter


# what the routes read of a campaign they were asked about
CAMPAIGN_COLUMNS = (Campaign.id, Campaign.name, Campaign.drop_cap_pct, Campaign.drop_window_hours,
                    Campaign.target_seconds, Campaign.sales_cycle_days, Campaign.queue_name)


@dataclass
class Api:
    """The app's shared state (``app.state.api``)."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    limiter: RateLimiter


_bearer = HTTPBearer(auto_error=False, description="An API key (`dialer keys create`): `Authorization: Bearer dk_...`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="The same API key in an X-API-Key header.")


def source_of(request: Request) -> str:
    """Where a request comes from, for the audit log (the proxy's client when uvicorn trusts it)."""
    host = request.client.host if request.client else "unknown"
    return f"api {host}"


async def authenticate(
    request: Request,
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
    header: str | None = Depends(_header),
) -> Principal:
    api: Api = request.app.state.api
    presented = (bearer.credentials if bearer else None) or header
    challenge = {"WWW-Authenticate": "Bearer"}
    if not presented:
        raise ApiError(401, "an API key is needed: send 'Authorization: Bearer dk_...' (see `dialer keys create`)",
                       headers=challenge)
    async with api.engine.begin() as conn:
        principal = await keys.authenticate(conn, presented)
    if principal is None:
        raise ApiError(401, "the API key is not valid: unknown, revoked, or its user is disabled", headers=challenge)
    wait = api.limiter.take(principal.key_id or principal.user)
    if wait:
        raise ApiError(429, f"too many requests for this key: retry in {math.ceil(wait)} s",
                       headers={"Retry-After": str(math.ceil(wait))})
    request.state.principal = principal
    return principal


@dataclass
class Caller:
    principal: Principal
    api: Api
    source: str

    @asynccontextmanager
    async def change(self) -> AsyncIterator[AsyncSession]:
        """One transaction (a session; ``await session.connection()`` for Core work), committed on success."""
        async with self.api.sessions() as session:
            async with session.begin():
                yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.api.engine.connect() as conn:
            yield conn

    async def campaign(self, conn: AsyncConnection, ref: str | int) -> Any:
        """The campaign row (agi.admin.campaigns.find_campaign) if it exists and the key may see it, else 404."""
        try:
            row = await find_campaign(conn, ref, *CAMPAIGN_COLUMNS)
        except AdminError:
            raise not_found(f"campaign {str(ref)!r}") from None
        if not self.principal.sees(row.id):
            raise not_found(f"campaign {str(ref)!r}")
        return row

    async def audit(self, conn: AsyncConnection, action: str, target: str,
                    details: Mapping[str, Any] | None = None) -> None:
        await audit.record(conn, self.principal.actor, action, target, details, self.source)


def require(permission: Permission):
    """Dependency: the Caller, when its key's role grants ``permission`` (else 403)."""

    async def dependency(request: Request, principal: Principal = Depends(authenticate)) -> Caller:
        if not principal.may(permission):
            raise ApiError(403, f"a {principal.role.value} key may not do this (needs {permission.value})")
        return Caller(principal, request.app.state.api, source_of(request))

    return Depends(dependency)
