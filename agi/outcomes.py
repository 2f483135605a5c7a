"""The outcome model of docs/outcomes.md: every status code, its label, and the summary grouping.

This is the one place a status exists. Everything else imports these enums;
no other module writes a status as a string literal. Codes are stored in the
database as the enum values (stable lower_snake_case).
"""

from __future__ import annotations

import re

from enum import StrEnum


class _Coded(StrEnum):
    """A stored code with a human label (``_LABELS`` on the subclass)."""

    @property
    def label(self) -> str:
        return type(self)._labels()[self]

    @classmethod
    def _labels(cls) -> dict:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    def noun(cls) -> str:
        """The class as words a person reads: CampaignMode -> "campaign mode"."""
        return re.sub(r"(?<!^)(?=[A-Z])", " ", cls.__name__).lower()

    @classmethod
    def parse(cls, text: str):
        """Accept a code or a label, any case; raise ValueError naming the choices."""
        key = text.strip().lower().replace("-", "_").replace(" ", "_")
        for member in cls:
            if key == member.value or text.strip().lower() == member.label.lower():
                return member
        choices = ", ".join(m.value for m in cls)
        raise ValueError(f"unknown {cls.noun()} {text!r}; choose one of: {choices}")


class Result(_Coded):
    """What one attempt ended as: a dial result, or a pre-dial result (no line used)."""

    # dial results
    LIVE_ANSWER = "live_answer"
    MACHINE_ANSWER = "machine_answer"
    FAX = "fax"
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    DISCONNECTED = "disconnected"
    SERVICE_ERROR = "service_error"
    OTHER = "other"
    # pre-dial results
    NO_PHONE = "no_phone"
    DNC = "dnc"
    INVALID_NUMBER = "invalid_number"
    FORBIDDEN_DESTINATION = "forbidden_destination"

    @classmethod
    def _labels(cls) -> dict:
        return _RESULT_LABELS

    @property
    def dialed(self) -> bool:
        """True for results of a call that was placed (a line was used)."""
        return self not in PREDIAL_RESULTS

    @property
    def charged(self) -> bool:
        """Service errors and pre-dial results are not charged (seed 000)."""
        return self.dialed and self is not Result.SERVICE_ERROR


_RESULT_LABELS = {
    Result.LIVE_ANSWER: "Live Answer",
    Result.MACHINE_ANSWER: "Machine Answer",
    Result.FAX: "Fax",
    Result.BUSY: "Line Busy",
    Result.NO_ANSWER: "No Answer",
    Result.REJECTED: "Rejected",
    Result.DISCONNECTED: "Disc. Number",
    Result.SERVICE_ERROR: "Service Error",
    Result.OTHER: "Other",
    Result.NO_PHONE: "Contact No Phone",
    Result.DNC: "Contact DNC",
    Result.INVALID_NUMBER: "Invalid Record",
    Result.FORBIDDEN_DESTINATION: "Forbidden Destination",
}

DIAL_RESULTS = frozenset(
    {
        Result.LIVE_ANSWER,
        Result.MACHINE_ANSWER,
        Result.FAX,
        Result.BUSY,
        Result.NO_ANSWER,
        Result.REJECTED,
        Result.DISCONNECTED,
        Result.SERVICE_ERROR,
        Result.OTHER,
    }
)
PREDIAL_RESULTS = frozenset(
    {Result.NO_PHONE, Result.DNC, Result.INVALID_NUMBER, Result.FORBIDDEN_DESTINATION}
)


class Deferral(_Coded):
    """Not a result: the contact is put off, never dialed, never counted."""

    OUTSIDE_HOURS = "outside_hours"

    @classmethod
    def _labels(cls) -> dict:
        return {Deferral.OUTSIDE_HOURS: "Outside Hours"}


class Routing(_Coded):
    """What routing did with a live answer in an agent campaign."""

    AGENT_CONNECTED = "agent_connected"
    DROPPED = "dropped"

    @classmethod
    def _labels(cls) -> dict:
        return {Routing.AGENT_CONNECTED: "Agent Connected", Routing.DROPPED: "Dropped"}


class Disposition(_Coded):
    """What the person chose, by IVR key or by the agent after the call (at most one)."""

    OPT_OUT = "opt_out"
    INTERESTED = "interested"
    NOT_INTERESTED = "not_interested"
    CALL_BACK = "call_back"
    NO_KEY = "no_key"
    WRONG_KEY = "wrong_key"

    @classmethod
    def _labels(cls) -> dict:
        return {
            Disposition.OPT_OUT: "Opt Out",
            Disposition.INTERESTED: "Interested",
            Disposition.NOT_INTERESTED: "Not Interested",
            Disposition.CALL_BACK: "Call Back",
            Disposition.NO_KEY: "(IVR) No key",
            Disposition.WRONG_KEY: "(IVR) Wrong key",
        }


class ContactState(_Coded):
    """Where a contact stands within one campaign."""

    PENDING = "pending"
    DIALING = "dialing"
    IN_CALL = "in_call"
    WAITING_AGENT = "waiting_agent"
    DONE = "done"
    RETRY_SCHEDULED = "retry_scheduled"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    DELETED = "deleted"
    # agent-facing states (seed 004): preview offers and the console's after-call work
    OPERATOR_ASSIGNED = "operator_assigned"  # offered to one agent, who may refuse it
    BCW = "bcw"  # before call work: the agent reads the contact, a countdown runs, then the call
    REJECTED_BY_OPERATOR = "rejected_by_operator"  # refused in preview: waits for another agent
    ACW = "acw"  # after call work: the call ended, the agent fills in the disposition

    @classmethod
    def _labels(cls) -> dict:
        return {
            ContactState.OPERATOR_ASSIGNED: "Operator Assigned",
            ContactState.BCW: "Before Call Work",
            ContactState.REJECTED_BY_OPERATOR: "Rejected by Operator",
            ContactState.ACW: "After Call Work",
            ContactState.PENDING: "Pending",
            ContactState.DIALING: "Dialing",
            ContactState.IN_CALL: "In Call",
            ContactState.WAITING_AGENT: "Waiting for Agent",
            ContactState.DONE: "Done",
            ContactState.RETRY_SCHEDULED: "Retry Scheduled",
            ContactState.SKIPPED: "Skipped",
            ContactState.CANCELLED: "Cancelled",
            ContactState.DELETED: "Deleted",
        }

    @property
    def live(self) -> bool:
        """A call for this contact is (supposedly) in progress."""
        return self in {ContactState.DIALING, ContactState.IN_CALL, ContactState.WAITING_AGENT}

    @property
    def final(self) -> bool:
        return self in {
            ContactState.DONE,
            ContactState.SKIPPED,
            ContactState.CANCELLED,
            ContactState.DELETED,
        }


class CampaignState(_Coded):
    """A campaign's state, per dialer and overall (seed 003)."""

    UNSCHEDULED = "unscheduled"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED_NO_AGENTS = "paused_no_agents"
    PAUSED_NO_AGI_SERVER = "paused_no_agi_server"  # no live FastAGI server for its answered calls
    STOPPED = "stopped"
    STOPPED_BY_ADMIN = "stopped_by_admin"
    STOPPED_BY_DIALER = "stopped_by_dialer"
    COMPLETED = "completed"

    @classmethod
    def _labels(cls) -> dict:
        return {
            CampaignState.UNSCHEDULED: "Unscheduled",
            CampaignState.SCHEDULED: "Scheduled",
            CampaignState.RUNNING: "Running and Dialing",
            CampaignState.PAUSED_NO_AGENTS: "Stopped Due to All Agent Lines Busy",
            CampaignState.PAUSED_NO_AGI_SERVER: "Paused: No FastAGI Server Alive",
            CampaignState.STOPPED: "Stopped",
            CampaignState.STOPPED_BY_ADMIN: "Stopped By Admin",
            CampaignState.STOPPED_BY_DIALER: "Stopped By Dialer",
            CampaignState.COMPLETED: "Completed",
        }


class CampaignMode(_Coded):
    """How the originator paces calls."""

    BROADCAST = "broadcast"  # no agents: keep the lines full
    PROGRESSIVE = "progressive"  # calls in flight = available agents x ratio
    PREDICTIVE = "predictive"  # over-dial from history under a drop-rate cap
    PREVIEW = "preview"  # one contact offered to one agent, who calls it (agi.originator.preview)

    @classmethod
    def _labels(cls) -> dict:
        return {
            CampaignMode.PREVIEW: "Preview",
            CampaignMode.BROADCAST: "Broadcast",
            CampaignMode.PROGRESSIVE: "Progressive",
            CampaignMode.PREDICTIVE: "Predictive",
        }


class AmdStatus(_Coded):
    """AMDSTATUS as Asterisk's AMD() sets it."""

    MACHINE = "MACHINE"
    HUMAN = "HUMAN"
    NOTSURE = "NOTSURE"
    HANGUP = "HANGUP"

    @classmethod
    def _labels(cls) -> dict:
        return {s: s.value for s in cls}


# The IVR key map: default keys of the outbound flow and of the agent wrap-up flow.
# Campaigns may override it with their own {key: disposition code} mapping.
DEFAULT_KEY_MAP: dict[str, Disposition] = {
    "1": Disposition.INTERESTED,
    "2": Disposition.NOT_INTERESTED,
    "3": Disposition.CALL_BACK,
    "9": Disposition.OPT_OUT,
}


def parse_key_map(raw: dict[str, str] | None) -> dict[str, Disposition]:
    """A campaign's stored key map ({"1": "interested"}) as Dispositions; default if empty."""
    if not raw:
        return dict(DEFAULT_KEY_MAP)
    key_map = {}
    for key, code in raw.items():
        if len(key) != 1 or key not in "0123456789*#":
            raise ValueError(f"IVR key {key!r} is not a single DTMF digit (0-9, *, #)")
        key_map[key] = Disposition.parse(code)
    return key_map


# The campaign summary: the three rows of the source documents (seed 000).
# Each cell is (code, label); "finished" is every attempt that reached a dial result.
FINISHED = "finished"
SUMMARY_ROWS: tuple[tuple[tuple[str, str], ...], ...] = (
    (
        (FINISHED, "Finished"),
        (Result.LIVE_ANSWER.value, Result.LIVE_ANSWER.label),
        (Result.MACHINE_ANSWER.value, Result.MACHINE_ANSWER.label),
        (Result.NO_PHONE.value, Result.NO_PHONE.label),
        (Result.DNC.value, Result.DNC.label),
    ),
    tuple(
        (r.value, r.label)
        for r in (
            Result.BUSY,
            Result.NO_ANSWER,
            Result.FAX,
            Result.DISCONNECTED,
            Result.SERVICE_ERROR,
            Result.OTHER,
        )
    ),
    (
        (Routing.AGENT_CONNECTED.value, Routing.AGENT_CONNECTED.label),
        (Routing.DROPPED.value, Routing.DROPPED.label),
        (Disposition.OPT_OUT.value, Disposition.OPT_OUT.label),
        (Disposition.INTERESTED.value, Disposition.INTERESTED.label),
        (Disposition.NOT_INTERESTED.value, Disposition.NOT_INTERESTED.label),
        (Disposition.CALL_BACK.value, Disposition.CALL_BACK.label),
    ),
)

PHONE_FIELDS = ("home", "work", "cell", "phone")


def parse_outcomes(text: str) -> list["Result | Routing | Disposition"]:
    """'no_answer,busy,dropped' -> the Result, Routing or Disposition each code or label names.

    Raises ValueError naming the unknown one and every code there is.
    """
    found = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        for enum in (Result, Routing, Disposition):
            try:
                found.append(enum.parse(part))
                break
            except ValueError:
                continue
        else:
            known = [m.value for e in (Result, Routing, Disposition) for m in e]
            raise ValueError(f"unknown result {part!r}; choose from {', '.join(known)}")
    return found
# A campaign's phone_field may also be "any": the first non-empty phone (agi.rules.predial)
PHONE_FIELD_ANY = "any"


class QueueStatus(_Coded):
    """QUEUESTATUS as Asterisk's Queue() leaves it when no agent took the call (app_queue.c
    queue_results); unset when an agent did, or when the person hung up waiting."""

    TIMEOUT = "TIMEOUT"
    FULL = "FULL"
    JOINEMPTY = "JOINEMPTY"
    LEAVEEMPTY = "LEAVEEMPTY"
    JOINUNAVAIL = "JOINUNAVAIL"
    LEAVEUNAVAIL = "LEAVEUNAVAIL"
    CONTINUE = "CONTINUE"
    WITHDRAW = "WITHDRAW"
    UNKNOWN = "UNKNOWN"  # no queue by that name (tests/traces/INDEX.txt, i3)

    @classmethod
    def _labels(cls) -> dict:
        return {s: s.value for s in cls}

    @property
    def routing_broken(self) -> bool:
        """The routing itself cannot work, whoever is logged in: the queue does not exist, or
        none of its members can be reached (seed 002 "call forwarding scheme did not work")."""
        return self in (QueueStatus.UNKNOWN, QueueStatus.JOINUNAVAIL)


def routing_broken(routing: str | None, queue_status: str | None) -> bool:
    """A dropped live answer whose queue could not work at all (QueueStatus.routing_broken)."""
    if routing != Routing.DROPPED or not queue_status:
        return False
    try:
        return QueueStatus(queue_status).routing_broken
    except ValueError:
        return False


# A call-back the person did not pick up: it rang out, was busy or rejected, or voicemail took it.
CALLBACK_MISSED = frozenset({Result.NO_ANSWER, Result.BUSY, Result.REJECTED, Result.MACHINE_ANSWER})


class CallClass(_Coded):
    """The call log's class of an attempt (seed 002), beyond its result, routing and choice.

    TARGET / REPEAT: a live answer long enough, first in its sales cycle or not (agi.rules.target);
    ROUTING_BROKEN: a live answer dropped because its queue cannot work (still a drop in the drop
    rate); CALLBACK_NO_ANSWER: the call-back the person asked for, and they did not pick up.
    """

    TARGET = "target"
    REPEAT = "repeat"
    ROUTING_BROKEN = "routing_broken"
    CALLBACK_NO_ANSWER = "callback_no_answer"

    @classmethod
    def _labels(cls) -> dict:
        return {
            CallClass.TARGET: "Target",
            CallClass.REPEAT: "Repeat",
            CallClass.ROUTING_BROKEN: "Call Forwarding Scheme Did Not Work",
            CallClass.CALLBACK_NO_ANSWER: "No Answer from a Customer (Callback)",
        }


def call_class(result: str | None, routing: str | None, queue_status: str | None, callback: bool,
               length_class: "CallClass | None" = None) -> "CallClass | None":
    """An attempt's class in the call log. ``length_class`` is its target/repeat class by talk time
    (agi.rules.target, over the number's history); a broken routing says more than the length."""
    if routing_broken(routing, queue_status):
        return CallClass.ROUTING_BROKEN
    if callback and result is not None and Result(result) in CALLBACK_MISSED:
        return CallClass.CALLBACK_NO_ANSWER
    return length_class
