"""A campaign's contacts as the admin commands see them: counts by state, and copying the contacts
of an earlier campaign by their last result (`campaign create NEW --from OLD --last-result ...`)."""

from __future__ import annotations

from sqlalchemy import func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from agi.db.models import Attempt, CampaignContact, utcnow
from agi.outcomes import ContactState, Disposition, Result, Routing


async def contact_state_counts(session: AsyncSession, campaign_ids: list[int] | None = None) -> dict:
    """{campaign_id: {state: count}}."""
    q = select(CampaignContact.campaign_id, CampaignContact.state, func.count()).group_by(
        CampaignContact.campaign_id, CampaignContact.state
    )
    if campaign_ids is not None:
        q = q.where(CampaignContact.campaign_id.in_(campaign_ids))
    out: dict[int, dict[str, int]] = {}
    for cid, state, n in (await session.execute(q)).all():
        out.setdefault(cid, {})[state] = n
    return out


def last_result_in(codes: list[str]):
    """SQL condition on a membership: its last result, or its last attempt's routing or disposition,
    is one of ``codes`` (Result, Routing and Disposition codes)."""
    results = [c for c in codes if c in {r.value for r in Result}]
    routings = [c for c in codes if c in {r.value for r in Routing}]
    dispositions = [c for c in codes if c in {d.value for d in Disposition}]
    conds = []
    if results:
        conds.append(CampaignContact.last_result.in_(results))
    if routings or dispositions:
        last = select(Attempt.id).where(Attempt.id == CampaignContact.last_attempt_id)
        sub = []
        if routings:
            sub.append(Attempt.routing.in_(routings))
        if dispositions:
            sub.append(Attempt.disposition.in_(dispositions))
        conds.append(last.where(or_(*sub)).exists())
    return or_(*conds)


async def copy_contacts_by_last_result(
    session: AsyncSession, old_id: int, new_id: int, codes: list[str]
) -> int:
    """Memberships of ``old_id`` whose last result (or its routing/disposition) is in ``codes``
    become fresh pending memberships of ``new_id``."""
    now = utcnow()
    source = select(
        CampaignContact.contact_id,
        CampaignContact.number,
        CampaignContact.timezone,
    ).where(
        CampaignContact.campaign_id == old_id,
        CampaignContact.state != ContactState.DELETED.value,
        last_result_in(codes),
    )
    rows = (await session.execute(source)).all()
    if not rows:
        return 0
    await session.execute(
        insert(CampaignContact),
        [
            {
                "campaign_id": new_id,
                "contact_id": r.contact_id,
                "number": r.number,
                "timezone": r.timezone,
                "state": ContactState.PENDING.value,
                "attempts": 0,
                "updated_at": now,
            }
            for r in rows
        ],
    )
    return len(rows)
