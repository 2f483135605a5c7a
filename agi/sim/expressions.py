"""Variable substitution and expressions of the dialplan: ``${...}`` and ``$[...]`` as
pbx_substitute_variables and Asterisk's expression parser do them, for the subset our dialplans use."""

from __future__ import annotations

import re
from collections.abc import Callable


def substitute(text: str, lookup: Callable[[str], str]) -> str:
    """Expand ${...} (innermost first) and $[...] like pbx_substitute_variables."""
    for _ in range(50):
        m = re.search(r"\$\{([^{}$]*)\}", text)
        if not m:
            break
        text = text[: m.start()] + lookup(m.group(1)) + text[m.end():]
    for _ in range(50):
        m = re.search(r"\$\[([^\[\]]*)\]", text)
        if not m:
            break
        text = text[: m.start()] + evaluate(m.group(1)) + text[m.end():]
    return text


_FUNCTION = re.compile(r"(CUT|FIELDQTY)\(([^,()]+),([^,()]),?(\d+)?\)")  # the functions of FastAGI failover


def function(name: str, lookup: Callable[[str], str]) -> str | None:
    """``CUT(var,delim,n)`` (func_cut) and ``FIELDQTY(var,delim)`` (func_strings) of variable
    ``var`` as ``lookup`` gives it; None for any other name."""
    m = _FUNCTION.fullmatch(name)
    if m is None:
        return None
    value = lookup(m.group(2))
    fields = value.split(m.group(3)) if value else []
    if m.group(1) == "FIELDQTY":
        return str(len(fields))
    n = int(m.group(4) or 1)
    return fields[n - 1] if 0 < n <= len(fields) else ""


def evaluate(expr: str) -> str:
    """A small subset of Asterisk's $[...] expressions: = != < > <= >= + - & | and plain values."""
    expr = expr.strip()
    for op in ("|", "&", "!=", "<=", ">=", "=", "<", ">", "+", "-"):
        quote = False
        for i in range(len(expr) - 1, 0, -1):  # rightmost operator outside quotes: left-associative
            if expr[i] == '"':
                quote = not quote
                continue
            if quote or expr[i: i + len(op)] != op:
                continue
            if op in ("=", "<", ">") and (expr[i - 1] in "!<>" or expr[i + 1: i + 2] == "="):
                continue
            a, b = _unquote(evaluate(expr[:i])), _unquote(evaluate(expr[i + len(op):]))
            return _apply(op, a, b)
    return _unquote(expr)


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1]
    return s


def _num(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _apply(op: str, a: str, b: str) -> str:
    na, nb = _num(a), _num(b)
    if op in ("+", "-"):
        r = (na or 0) + (nb or 0) if op == "+" else (na or 0) - (nb or 0)
        return str(int(r)) if r == int(r) else str(r)
    if op == "&":
        return b if a not in ("", "0") and b not in ("", "0") else "0"
    if op == "|":
        return a if a not in ("", "0") else (b if b not in ("", "0") else "0")
    x, y = (na, nb) if na is not None and nb is not None else (a, b)
    result = {"=": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]  # type: ignore[operator]
    return "1" if result else "0"


def truthy(value: str) -> bool:
    v = value.strip()
    return v not in ("", "0")
