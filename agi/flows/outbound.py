"""The answered outbound call: detection result, message, keys, agent or drop, final result."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from agi.logs import attempt_extra
from agi.fastagi import AGICall, AGIHangup
from agi.flows.call_state import answered_result, detection, queue_outcome, record_routing
from agi.flows.context import CampaignSettings, FlowContext, log, unknown_call
from agi.outcomes import Disposition, Result, Routing

# Queue option F: when the person hangs up after the bridge, the agent's leg continues
# in [dialer-wrapup] (dialplan/dialer.conf) and keys a disposition there.
WRAPUP_OPTION = "F(dialer-wrapup^s^1)"
# WaitForSilence(1500 ms of silence, once, give up after 15 s): the beep after a greeting.
BEEP_SILENCE = ("1500", "1", "15")


@dataclass(frozen=True)
class Choice:
    """What the person chose when nothing follows it on the call: written with the final result."""

    keys: str | None = None
    disposition: Disposition | None = None
    callback_at: dt.datetime | None = None
    at: dt.datetime | None = None

    def finish_args(self) -> dict:
        """``FlowContext.finish`` keyword arguments."""
        return dict(keys=self.keys, disposition=self.disposition, callback_at=self.callback_at, now=self.at)


NOTHING_TO_WRITE = Choice()


async def outbound(ctx: FlowContext, call: AGICall) -> None:
    """agi://…/outbound?campaign=N,AMDSTATUS,AMDCAUSE: everything after answer."""
    amd, amd_cause = await detection(call)
    attempt = await ctx.find_attempt(call, answered_at=ctx.now(), amd_status=amd.value if amd else None,
                                     amd_cause=amd_cause)
    if attempt is None:
        return await unknown_call(call)
    campaign = await ctx.campaign(attempt.campaign_id)

    result = answered_result(amd, campaign)
    last = NOTHING_TO_WRITE
    try:
        if result is Result.MACHINE_ANSWER:
            await leave_voicemail(call, campaign)
        elif result is Result.LIVE_ANSWER:
            last = await talk_to_person(ctx, call, attempt.id, campaign)
    except AGIHangup:
        log.info("attempt %s: the person hung up", attempt.id, extra=attempt_extra(attempt.id))
    except BaseException:
        await ctx.finish_behind(attempt.id, result, ended_at=ctx.now(), answered_at=attempt.answered_at)
        raise
    await ctx.hang_up_and_finish(call, attempt.id, result, ended_at=ctx.now(), answered_at=attempt.answered_at,
                                 **last.finish_args())


async def leave_voicemail(call: AGICall, campaign: CampaignSettings) -> None:
    """Wait for the beep (WAITSTATUS SILENCE or TIMEOUT), then leave the campaign's message."""
    if not campaign.voicemail_message:
        return
    if campaign.wait_for_beep:
        await call.exec("WaitForSilence", *BEEP_SILENCE)
    await call.stream_file(campaign.voicemail_message)


async def talk_to_person(ctx: FlowContext, call: AGICall, attempt_id: str, campaign: CampaignSettings) -> Choice:
    """Play the message, listen for a key the whole time, act on it; the choice left to write.

    A choice that something follows on the call is written before it (opt-out: on the DNC
    list before the confirmation plays); a choice with nothing after it (no key, a wrong key,
    not interested, also when the person hung up during the menu) is returned, to be written
    with the final result while the call is hung up.
    """
    await call.answer()
    heard = await call.menu(
        campaign.message, keys=campaign.key_map, tries=campaign.key_tries, timeout=campaign.key_timeout,
    )
    if heard.hung_up:
        log.info("attempt %s: the person hung up during the message (%s)", attempt_id,
                 heard.outcome or "before it played through", extra=attempt_extra(attempt_id))
    if heard.key is None:  # no_key, wrong_key (keys recorded), or gone during the first play: nothing
        return Choice(keys=heard.keys, disposition=heard.outcome)
    choice = campaign.key_map[heard.key]
    now = ctx.now()
    callback_at = campaign.callback_at(now) if choice is Disposition.CALL_BACK else None
    if choice is Disposition.INTERESTED and campaign.queue_name:
        await ctx.choose(attempt_id, heard.keys, choice, now=now, waiting_agent=True)
        await transfer_to_agent(ctx, call, attempt_id, campaign)
    elif choice is Disposition.OPT_OUT:
        await ctx.choose(attempt_id, heard.keys, choice, now=now)
        await call.stream_file(campaign.optout_message)
    elif choice is Disposition.CALL_BACK:
        await ctx.choose(attempt_id, heard.keys, choice, callback_at, now=now)
        await call.stream_file(campaign.callback_message)
    else:
        return Choice(keys=heard.keys, disposition=choice, callback_at=callback_at, at=now)
    return NOTHING_TO_WRITE


async def transfer_to_agent(ctx: FlowContext, call: AGICall, attempt_id: str, campaign: CampaignSettings) -> None:
    """Queue the person for drop_timeout seconds: bridged -> agent_connected, else dropped."""
    await call.exec("Queue", campaign.queue_name, WRAPUP_OPTION, "", "", campaign.drop_timeout)
    try:
        outcome = await queue_outcome(call, queued=True)
    except AGIHangup:
        # AGIEXITONHANGUP=yes: Asterisk closed the session as the person hung up, before we could
        # read the queue's variables; the h extension's hangup flow reads them (queue_outcome)
        log.info("attempt %s: session closed after the queue; the hangup flow records the routing",
                 attempt_id, extra=attempt_extra(attempt_id))
        raise
    assert outcome is not None  # queued: always an outcome
    await record_routing(ctx, attempt_id, campaign.queue_name, outcome)
    if outcome.routing is Routing.DROPPED:
        log.info("attempt %s: dropped (%s)", attempt_id,
                 "caller hung up in the queue" if outcome.caller_abandoned
                 else f"no agent in time, QUEUESTATUS={outcome.status}", extra=attempt_extra(attempt_id))
        if not call.hung_up:
            await call.stream_file(campaign.drop_message)
