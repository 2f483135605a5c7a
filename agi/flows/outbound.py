"""The answered outbound call: detection result, message, keys, agent or drop, final result."""

from __future__ import annotations

from agi.logs import attempt_extra
from agi.fastagi import AGICall, AGIHangup
from agi.flows.context import CampaignSettings, FlowContext, log, unknown_call, utcnow
from agi.outcomes import AmdStatus, Disposition, Result, Routing

# Queue option F: when the person hangs up after the bridge, the agent's leg continues
# in [dialer-wrapup] (dialplan/dialer.conf) and keys a disposition there.
WRAPUP_OPTION = "F(dialer-wrapup^s^1)"
# WaitForSilence(1500 ms of silence, once, give up after 15 s): the beep after a greeting.
BEEP_SILENCE = ("1500", "1", "15")


async def outbound(ctx: FlowContext, call: AGICall) -> None:
    """agi://…/outbound?campaign=N,AMDSTATUS,AMDCAUSE: everything after answer."""
    amd, amd_cause = await detection(call)
    attempt = await ctx.find_attempt(call, answered_at=utcnow(), amd_status=amd.value if amd else None,
                                     amd_cause=amd_cause)
    if attempt is None:
        return await unknown_call(call)
    campaign = await ctx.campaign(attempt.campaign_id)

    result = answered_result(amd, campaign)
    last: dict = {}  # the keys and choice when nothing happens on the call after them (ctx.finish)
    try:
        if result is Result.MACHINE_ANSWER:
            await leave_voicemail(call, campaign)
        elif result is Result.LIVE_ANSWER:
            await talk_to_person(ctx, call, attempt.id, campaign, last)
    except AGIHangup:
        log.info("attempt %s: the person hung up", attempt.id, extra=attempt_extra(attempt.id))
    except BaseException:
        await ctx.finish_behind(attempt.id, result, ended_at=utcnow(), **last)
        raise
    await ctx.hang_up_and_finish(call, attempt.id, result, ended_at=utcnow(), **last)


async def detection(call: AGICall, *, from_args: bool = True) -> tuple[AmdStatus | None, str | None]:
    """AMDSTATUS/AMDCAUSE from the dialplan's arguments (``from_args``), else from the channel."""
    status, cause = (call.arg(1), call.arg(2)) if from_args else ("", "")
    if not status:
        status = await call.get_variable("AMDSTATUS") or ""
        cause = await call.get_variable("AMDCAUSE") or cause
    try:
        return AmdStatus(status.strip().upper()), cause or None
    except ValueError:
        return None, cause or None


def answered_result(amd: AmdStatus | None, campaign: CampaignSettings) -> Result:
    """MACHINE -> machine_answer; HUMAN -> live_answer; NOTSURE as the campaign says;
    HANGUP (gone during detection) -> other: "answered then hung up at once" (seed 000)."""
    if amd is AmdStatus.MACHINE or (amd is AmdStatus.NOTSURE and campaign.notsure_as_machine):
        return Result.MACHINE_ANSWER
    if amd is AmdStatus.HANGUP:
        return Result.OTHER
    return Result.LIVE_ANSWER


async def leave_voicemail(call: AGICall, campaign: CampaignSettings) -> None:
    """Wait for the beep (WAITSTATUS SILENCE or TIMEOUT), then leave the campaign's message."""
    if not campaign.voicemail_message:
        return
    if campaign.wait_for_beep:
        await call.exec("WaitForSilence", *BEEP_SILENCE)
    await call.stream_file(campaign.voicemail_message)


async def talk_to_person(ctx: FlowContext, call: AGICall, attempt_id: str, campaign: CampaignSettings,
                         last: dict) -> None:
    """Play the message, listen for a key the whole time, act on it.

    A choice that something follows on the call is written before it (opt-out: on the DNC
    list before the confirmation plays); a choice with nothing after it goes into ``last``
    (``ctx.finish`` arguments), written with the final result while the call is hung up.
    """
    await call.answer()
    key, no_choice = await call.menu(
        campaign.message, keys=campaign.key_map, tries=campaign.key_tries, timeout=campaign.key_timeout,
    )
    if key is None:
        last.update(keys="", disposition=no_choice)
        return
    choice = campaign.key_map[key]
    now = utcnow()
    callback_at = campaign.callback_at(now) if choice is Disposition.CALL_BACK else None
    if choice is Disposition.INTERESTED and campaign.queue_name:
        await ctx.choose(attempt_id, key, choice, now=now, waiting_agent=True)
        await transfer_to_agent(ctx, call, attempt_id, campaign)
    elif choice is Disposition.OPT_OUT:
        await ctx.choose(attempt_id, key, choice, now=now)
        await call.stream_file(campaign.optout_message)
    elif choice is Disposition.CALL_BACK:
        await ctx.choose(attempt_id, key, choice, callback_at, now=now)
        await call.stream_file(campaign.callback_message)
    else:
        last.update(keys=key, disposition=choice, callback_at=callback_at, now=now)


async def transfer_to_agent(ctx: FlowContext, call: AGICall, attempt_id: str, campaign: CampaignSettings) -> None:
    """Queue the person for drop_timeout seconds: bridged -> agent_connected, else dropped."""
    await call.exec("Queue", campaign.queue_name, WRAPUP_OPTION, "", "", campaign.drop_timeout)
    try:
        routing, agent, abandoned = await queue_outcome(call, queued=True)  # type: ignore[misc]
    except AGIHangup:
        # AGIEXITONHANGUP=yes: Asterisk closed the session as the person hung up, before we could
        # read the queue's variables; the h extension's hangup flow reads them (queue_outcome)
        log.info("attempt %s: session closed after the queue; the hangup flow records the routing",
                 attempt_id, extra=attempt_extra(attempt_id))
        raise
    await ctx.set_routing(attempt_id, routing, agent, caller_abandoned=abandoned)
    if routing is Routing.DROPPED:
        log.info("attempt %s: dropped (%s)", attempt_id,
                 "caller hung up in the queue" if abandoned else "no agent in time", extra=attempt_extra(attempt_id))
        if not call.hung_up:
            await call.stream_file(campaign.drop_message)


async def queue_outcome(call: AGICall, *, queued: bool) -> tuple[Routing, str | None, bool] | None:
    """What ``Queue`` did, from the channel's variables: (routing, agent, abandoned by the caller).

    docs/outcomes.md "Agents": bridged = QUEUESTATUS unset and MEMBERINTERFACE set; any QUEUESTATUS
    (TIMEOUT, JOINEMPTY, FULL, LEAVEEMPTY, JOINUNAVAIL, LEAVEUNAVAIL, UNKNOWN) = no agent in time;
    QUEUESTATUS unset without a member = the person hung up waiting (ABANDONED=TRUE). Without
    ``queued`` (the h extension) None when the channel never went through Queue.
    """
    status = await call.get_variable("QUEUESTATUS")
    member = await call.get_variable("MEMBERINTERFACE")
    if status is None and member:
        return Routing.AGENT_CONNECTED, await call.get_variable("MEMBERNAME") or member, False
    if status is None and not queued and (await call.get_variable("ABANDONED") or "").upper() != "TRUE":
        return None
    return Routing.DROPPED, None, status is None
