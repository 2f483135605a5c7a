"""Channel variables and dialplan functions as AGI's GET VARIABLE and GET FULL VARIABLE read them:
the channel's variables, the built-ins (CHANNEL, UNIQUEID, EPOCH...), CDR(), CALLERID(), CHANNEL(),
FAXOPT(), and ``${...}`` substitution over them."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from agi.sim.agi_session import AgiSession


def lookup(s: AgiSession, name: str) -> str | None:
    """GET VARIABLE: a dialplan function when the name ends in ')', else a variable or builtin."""
    line = s.line
    if name.endswith(")"):
        return _function(s, name)
    variables = line.variables
    if name in variables:
        return variables[name]
    builtin = {
        "CHANNEL": lambda: line.name,
        "UNIQUEID": lambda: line.uniqueid,
        "EXTEN": lambda: s.extension,
        "CONTEXT": lambda: s.context,
        "PRIORITY": lambda: str(s.priority),
        "HANGUPCAUSE": lambda: str(getattr(line, "hangupcause", variables.get("HANGUPCAUSE", "0"))),
        "EPOCH": lambda: str(int(s.clock.now())),
    }.get(name)
    return builtin() if builtin else None


def _function(s: AgiSession, expr: str) -> str | None:
    line = s.line
    fname, _, arg = expr[:-1].partition("(")
    fname, arg = fname.upper(), arg.strip()
    now = s.clock.now()
    answered = getattr(line, "answered_at", None) or s.far.answered_at
    created = getattr(line, "created", None) or answered
    forked = getattr(line, "cdr_started", None)  # the caller's CDR started over (agi.sim.queues)
    if forked is not None:
        answered, created = max(answered, forked), max(created, forked)
    if fname == "CDR":
        return {
            "billsec": str(max(0, int(now - answered))),
            "duration": str(max(0, int(now - created))),
            "disposition": "ANSWERED",
            "uniqueid": line.uniqueid,
            "channel": line.name,
        }.get(arg.lower(), "")
    if fname == "CALLERID":
        if arg.lower() in ("num", "number"):
            return getattr(line, "callerid_num", "") or line.variables.get("CALLERID(num)", "")
        if arg.lower() == "name":
            return getattr(line, "callerid_name", "") or ""
        return ""
    if fname == "CHANNEL":
        key = arg.lower()
        if key == "state":
            return "Up"
        if key in ("hangupsource", "hangup_handler_push"):
            return ""
        if key == "language":
            return getattr(line, "language", "en")
        return line.variables.get(expr)
    if fname == "FAXOPT":
        if arg.lower() == "faxdetect":
            return line.variables.get("FAXOPT(faxdetect)", "no")
        return line.variables.get(expr, "")
    if fname == "HANGUPCAUSE_KEYS":
        return ""
    if expr in line.variables:
        return line.variables[expr]
    return None


def substitute(s: AgiSession, text: str) -> str:
    """${...} substitution of GET FULL VARIABLE (variables, builtins, the functions above)."""
    out = []
    i = 0
    while i < len(text):
        if text.startswith("${", i):
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text.startswith("${", j):
                    depth += 1
                    j += 2
                    continue
                if text[j] == "}":
                    depth -= 1
                j += 1
            inner = substitute(s, text[i + 2 : j - 1])
            out.append(lookup(s, inner) or "")
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)
