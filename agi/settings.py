"""One settings object: defaults, then an optional TOML file, then DIALER_* environment variables.

Secrets are held in ``Secret`` so that no repr, log line or ``--help`` shows them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path


class Secret(str):
    """A string whose repr and str-formatting in logs never shows the value."""

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def reveal(self) -> str:
        return str.__str__(self)


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """'host:port', 'host' or ':port' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text or "127.0.0.1", default_port
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise ValueError(f"bad address {text!r}: expected HOST:PORT") from None


@dataclass
class Settings:
    db_url: str = "sqlite+aiosqlite:///./dialer.db"
    # PostgreSQL connections this process holds at most (agi.db.engine): 10 fits 6 processes in 100
    db_pool: int = 10
    # server-side prepared statements (psycopg's and the attempt writer's); false behind PgBouncer
    # before 1.21 in transaction pooling mode, which cannot keep them (README "PgBouncer")
    db_prepared_statements: bool = True
    ami_host: str = "127.0.0.1"
    ami_port: int = 5038
    ami_user: str = "dialer"
    ami_secret: Secret = field(default_factory=lambda: Secret(""))
    agi_bind: str = "127.0.0.1:4573"
    agi_allow: tuple[str, ...] = ("127.0.0.1", "::1")
    agi_max_sessions: int = 2000
    # the agi://host:port Asterisk should reach us at (goes into the dialplan's DIALER_AGI)
    agi_public: str = ""
    dialer_name: str = "default"
    log_level: str = "INFO"

    _ENV = {
        "db_url": "DIALER_DB_URL",
        "db_pool": "DIALER_DB_POOL",
        "db_prepared_statements": "DIALER_DB_PREPARED_STATEMENTS",
        "ami_host": "DIALER_AMI_HOST",
        "ami_port": "DIALER_AMI_PORT",
        "ami_user": "DIALER_AMI_USER",
        "ami_secret": "DIALER_AMI_SECRET",
        "agi_bind": "DIALER_AGI_BIND",
        "agi_allow": "DIALER_AGI_ALLOW",
        "agi_max_sessions": "DIALER_AGI_MAX_SESSIONS",
        "agi_public": "DIALER_AGI_PUBLIC",
        "dialer_name": "DIALER_NAME",
        "log_level": "DIALER_LOG_LEVEL",
    }

    @classmethod
    def load(cls, config: str | Path | None = None, env: dict | None = None) -> Settings:
        """Defaults < TOML file (flat keys or a [dialer] table) < environment."""
        env = os.environ if env is None else env
        values: dict = {}
        if config:
            path = Path(config)
            try:
                data = tomllib.loads(path.read_text())
            except FileNotFoundError:
                raise ValueError(f"config file {path} not found") from None
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"config file {path} is not valid TOML: {exc}") from None
            data = data.get("dialer", data)
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(data) - known
            if unknown:
                raise ValueError(f"config file {path}: unknown keys {sorted(unknown)}")
            values.update(data)
        for name, var in cls._ENV.items():
            if var in env and env[var] != "":
                values[name] = env[var]
        settings = cls(**{k: _coerce(k, v) for k, v in values.items()})
        if not settings.db_prepared_statements:  # carried by the URL to every engine made from it
            settings.db_url = with_prepared_statements_off(settings.db_url)
        settings.given = frozenset(values)  # what the file or the environment set (the rest: defaults)
        return settings

    @property
    def agi_host_port(self) -> tuple[str, int]:
        return parse_hostport(self.agi_bind, 4573)

    @property
    def is_sqlite(self) -> bool:
        return self.db_url.startswith("sqlite")

    def safe_dict(self) -> dict:
        """Settings for display: secrets masked."""
        out = dataclasses.asdict(self)
        out["ami_secret"] = "***" if self.ami_secret else ""
        out["db_url"] = mask_url(self.db_url)
        return out


def mask_url(url: str) -> str:
    """postgresql://user:pw@host/db -> postgresql://user:***@host/db."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, at, hostpart = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{hostpart}"


def with_prepared_statements_off(url: str) -> str:
    """``url`` with ``prepared_statements=false`` (agi.db.engine reads it; PostgreSQL only)."""
    if not url.startswith("postgres") or "prepared_statements=" in url:
        return url
    return url + ("&" if "?" in url else "?") + "prepared_statements=false"


def _coerce(name: str, value):
    if name == "db_prepared_statements":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text not in ("true", "false", "on", "off", "yes", "no", "1", "0"):
            raise ValueError(f"db_prepared_statements (DIALER_DB_PREPARED_STATEMENTS) is true or false, not {value!r}")
        return text in ("true", "on", "yes", "1")
    if name in ("ami_port", "agi_max_sessions", "db_pool"):
        number = int(value)
        if name == "db_pool" and number < 1:
            raise ValueError(f"db_pool (DIALER_DB_POOL) must be at least 1, not {number}")
        return number
    if name == "ami_secret":
        return Secret(value)
    if name == "agi_allow":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return tuple(value)
    return value
