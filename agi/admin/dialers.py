"""Dialers (one originator per Asterisk box) and the campaigns assigned to them: add or change a
dialer, list them, assign a campaign to one, and the per-dialer campaign state the admin's
commands set until each dialer's next tick recomputes it (agi/rules/lifecycle.py)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from agi.admin.campaigns import get_campaign
from agi.db.models import Campaign, Dialer, DialerCampaign, utcnow
from agi.errors import AdminError
from agi.outcomes import CampaignState
from agi.rules.lifecycle import WORKING_STATES
from agi.settings import parse_hostport

AMI_DEFAULT_PORT = 5038  # Asterisk manager.conf default port


def ami_address(text: str) -> tuple[str, int]:
    """'HOST[:PORT]' -> (host, port), port 5038 by default."""
    try:
        host, port = parse_hostport(text, AMI_DEFAULT_PORT)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    if not 0 < port < 65536:
        raise AdminError(f"bad AMI port {port}")
    return host, port


def dial_template(text: str) -> str:
    """An Originate channel with the one placeholder {number}, e.g. 'PJSIP/{number}@trunk'."""
    if "{number}" not in text:
        raise AdminError("--template must contain {number}, e.g. 'PJSIP/{number}@trunk'")
    try:
        text.format(number="+15550100")
    except (KeyError, IndexError, ValueError):
        raise AdminError("--template may only use the {number} placeholder") from None
    return text


def _check_limits(lines: int | None, cps: float | None) -> None:
    if lines is not None and lines < 1:
        raise AdminError("--lines must be at least 1")
    if cps is not None and not cps > 0:
        raise AdminError("--cps must be greater than 0")


async def add_dialer(
    session: AsyncSession,
    name: str,
    ami: str | None = None,
    lines: int | None = None,
    cps: float | None = None,
    template: str | None = None,
    update_existing: bool = False,
) -> tuple[Dialer, bool]:
    """Add a dialer (or change one with ``update_existing``); returns (dialer, created)."""
    name = name.strip()
    if not name or len(name) > 80:
        raise AdminError("a dialer needs a name of 1 to 80 characters")
    d = (await session.execute(select(Dialer).where(Dialer.name == name))).scalar_one_or_none()
    created = d is None
    if not created and not update_existing:
        raise AdminError(f"dialer {name!r} already exists (add --update to change it)")
    address = ami_address(ami) if ami is not None else None
    _check_limits(lines, cps)
    template = dial_template(template) if template is not None else None
    if created:
        d = Dialer(name=name)
        session.add(d)
    changes = {"lines": lines, "cps": cps, "dial_template": template}
    if address is not None:
        changes.update(ami_host=address[0], ami_port=address[1])
    for attr, value in changes.items():
        if value is not None:
            setattr(d, attr, value)
    for col in Dialer.__table__.columns:  # defaults for display before INSERT
        if getattr(d, col.key) is None and col.default is not None and col.default.is_scalar:
            setattr(d, col.key, col.default.arg)
    await session.flush()
    return d, created


async def list_dialers(session: AsyncSession) -> list[dict]:
    dialers = (await session.execute(select(Dialer).order_by(Dialer.name))).scalars().all()
    rows = (
        await session.execute(
            select(DialerCampaign.dialer_id, Campaign.name, DialerCampaign.state, DialerCampaign.lines)
            .join(Campaign, Campaign.id == DialerCampaign.campaign_id)
            .order_by(Campaign.name)
        )
    ).all()
    by_dialer: dict[int, list] = {}
    for dialer_id, cname, state, lines in rows:
        by_dialer.setdefault(dialer_id, []).append({"campaign": cname, "state": state, "lines": lines})
    return [
        {
            "id": d.id,
            "name": d.name,
            "ami": f"{d.ami_host}:{d.ami_port}",
            "lines": d.lines,
            "cps": d.cps,
            "template": d.dial_template,
            "last_heartbeat": d.last_heartbeat,
            "campaigns": by_dialer.get(d.id, []),
        }
        for d in dialers
    ]


async def assign_campaign(
    session: AsyncSession, ref: str, dialer_name: str, lines: int | None = None, remove: bool = False
) -> dict:
    """Assign a campaign to a dialer (its lines there), or remove the assignment."""
    c = await get_campaign(session, ref)
    d = (await session.execute(select(Dialer).where(Dialer.name == dialer_name.strip()))).scalar_one_or_none()
    if d is None:
        raise AdminError(f"no dialer {dialer_name!r}; add it with `dialer dialers add {dialer_name} --ami HOST:PORT`")
    dc = await session.get(DialerCampaign, (d.id, c.id))
    if remove:
        if dc is None:
            raise AdminError(f"campaign {c.name!r} is not assigned to dialer {d.name!r}")
        await session.delete(dc)
        await session.flush()
        return {"campaign": c.name, "dialer": d.name, "removed": True}
    if lines is not None:
        if lines < 1:
            raise AdminError("--lines must be at least 1")
        if lines > d.lines:
            raise AdminError(f"dialer {d.name!r} has only {d.lines} lines; give --lines {d.lines} or fewer")
    if dc is None:
        dc = DialerCampaign(dialer_id=d.id, campaign_id=c.id, lines=lines, state=initial_dialer_state(c))
        session.add(dc)
    else:
        dc.lines = lines
    await session.flush()
    return {"campaign": c.name, "dialer": d.name, "lines": lines if lines is not None else c.lines,
            "state": dc.state, "removed": False}


def initial_dialer_state(c: Campaign) -> str:
    """A new assignment shows the admin's intent until the dialer's next tick recomputes it."""
    state = CampaignState(c.state)
    if state in WORKING_STATES or state is CampaignState.STOPPED_BY_DIALER:
        return CampaignState.SCHEDULED.value
    return state.value


async def set_dialer_states(session: AsyncSession, campaign_id: int, to: CampaignState,
                            only_from: Iterable[CampaignState] | None = None) -> None:
    """The campaign's state on each of its dialers (only those now in ``only_from``, if given)."""
    q = update(DialerCampaign).where(DialerCampaign.campaign_id == campaign_id)
    if only_from is not None:
        q = q.where(DialerCampaign.state.in_([s.value for s in only_from]))
    await session.execute(q.values(state=to.value, updated_at=utcnow()))


async def dialer_count(session: AsyncSession, campaign_id: int) -> int:
    """How many dialers the campaign is assigned to."""
    return (
        await session.execute(select(func.count()).select_from(DialerCampaign).where(
            DialerCampaign.campaign_id == campaign_id))
    ).scalar_one()
