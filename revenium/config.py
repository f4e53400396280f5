"""Configuration: one frozen :class:`Config`, read from the environment once.

Why one immutable object: every part of the SDK (the proxies on the caller's thread, the
runtime thread, the CLI) must agree on the settings of a given moment. ``configure()`` builds
a new ``Config`` with ``attrs.evolve`` and swaps a single reference, so a reader sees either
the old settings or the new ones, never a mix, and needs no lock.

This is the only module that reads ``os.environ``. Environment problems are warned about once,
naming the variable, and the default is used: a typo in a deployment must not crash the
process at import or start. Mistakes passed to ``configure()`` are code, so they raise there.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Final, Literal, cast
from urllib.parse import urlsplit

import attrs

from revenium._diagnostics import ErrorHook, logger, set_error_hook, warn_once
from revenium.attribution import EMPTY, Metadata, merge, parse_metadata

__all__ = [
    "DEFAULT_BASE_URL",
    "Config",
    "Secret",
    "configure",
    "get_config",
    "meter_url",
]

DEFAULT_BASE_URL: Final = "https://api.revenium.ai"
_KEY_PREFIXES: Final = ("hak_", "rev_")
PrintSummary = Literal["off", "human", "json"]
_NO_ALIASES: Final[Mapping[str, str]] = {}
FailMode = Literal["open", "closed"]


@attrs.frozen(repr=False, eq=True)
class Secret:
    """A credential that never shows itself in a repr, a log line or an exception message.

    ``reveal()`` is the one way to read it, used only when building the HTTP header.
    """

    _value: str

    def reveal(self) -> str:
        """The raw secret, for the ``x-api-key`` header and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{self.masked()}')"

    __str__ = __repr__

    def masked(self) -> str:
        """A recognisable but useless form: the prefix and the length."""
        prefix = next((p for p in _KEY_PREFIXES if self._value.startswith(p)), "")
        return f"{prefix}***({len(self._value)} chars)"

    def redact(self, text: str) -> str:
        """``text`` with this secret masked wherever it appears, whole or in pieces.

        An HTTP library refusing a header quotes the header's value in its error (a key with
        a newline, pasted from a two-line file): such errors reach logs, the spool and
        ``revenium doctor`` only through this.
        """
        for piece in (self._value, *self._value.split()):  # a newline splits the quote
            if len(piece) >= 8:
                text = text.replace(piece, self.masked())
        return text


def _check_key_shape(value: str, source: str) -> None:
    if not value.startswith(_KEY_PREFIXES) or not all(33 <= ord(c) <= 126 for c in value):
        warn_once(
            f"key-shape:{source}",
            "revenium: %s does not look like a Revenium API key (expected a 'hak_' or 'rev_' "
            "prefix and no spaces); it will be sent anyway and the server will judge it",
            source,
        )


def meter_url(base_url: str) -> str:
    """The metering root: ``base_url`` with a ``/meter`` segment appended when it has none.

    ``https://api.revenium.ai`` -> ``https://api.revenium.ai/meter``;
    ``http://127.0.0.1:8080/meter/`` -> ``http://127.0.0.1:8080/meter``;
    a path past the last ``meter`` segment is cut. Raises ``ValueError`` for a URL that is not
    http(s) with a host.
    """
    parts = urlsplit(base_url.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(
            f"the metering base URL must be an http(s) URL with a host; got {base_url!r}"
        )
    segments = [s for s in parts.path.split("/") if s]
    if "meter" in segments:
        segments = segments[: len(segments) - segments[::-1].index("meter")]
    else:
        segments.append("meter")
    return f"{parts.scheme}://{parts.netloc}/{'/'.join(segments)}"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _user_dir(kind: Literal["state", "data"]) -> Path:
    """The per-user directory for durable files (no ``platformdirs`` dependency for two paths).

    The spool lives in the *state* directory, not the cache, which cleaners may wipe.
    """
    home = Path.home()
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        base = os.environ.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return Path(base) / "revenium"
    if sys.platform == "darwin":  # pragma: no cover - exercised on macOS only
        return home / "Library" / "Application Support" / "revenium"
    if kind == "state":
        return Path(os.environ.get("XDG_STATE_HOME") or home / ".local" / "state") / "revenium"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "revenium"


@attrs.frozen(kw_only=True)
class Config:
    """Every setting of the SDK. Build it with :meth:`from_env`; change it with ``configure()``.

    Field names are what ``configure()`` accepts; the environment variable of each is given in
    ``docs/configuration.md``.
    """

    api_key: Secret | None = None
    base_url: str = DEFAULT_BASE_URL
    log_level: str | None = None
    capture_prompts: bool = False
    max_prompt_size: int = 50_000
    capture_error_messages: bool = False
    selective_metering: bool = False
    team_id: str | None = None
    defaults: Metadata = EMPTY
    circuit_breaker_enabled: bool = False
    bypass: bool = False
    enforcement_base_url: str | None = None
    cb_poll_interval_seconds: float = 60.0
    cb_fail_mode: FailMode = "open"
    cb_startup_wait_seconds: float = 2.0
    cache_dir: Path | None = None
    timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 5.0
    shutdown_timeout_seconds: float = 5.0
    max_retries: int = 3
    max_concurrency: int = 8
    queue_size: int = 50_000
    install_signal_handlers: bool = False
    spool_dir: Path | None = None
    ledger_path: Path | None = None
    print_summary: PrintSummary = "off"
    inject_stream_usage: bool = True
    model_aliases: Mapping[str, str] = attrs.field(factory=lambda: _NO_ALIASES, hash=False)
    on_error: ErrorHook | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def meter_url(self) -> str:
        """Root of the metering endpoints, e.g. ``https://api.revenium.ai/meter``."""
        return meter_url(self.base_url)

    @property
    def enforcement_url(self) -> str:
        """Root of the enforcement-rules feed: the override, else the metering origin."""
        return (self.enforcement_base_url or _origin(self.meter_url)).rstrip("/")

    @property
    def spool_directory(self) -> Path:
        """Where the durable spool lives (``REVENIUM_SPOOL_DIR`` or the user state directory)."""
        return self.spool_dir or _user_dir("state")

    @property
    def ledger_file(self) -> Path | None:
        """The local ledger, or ``None`` when records go only to the Revenium API.

        Without an API key the ledger is the destination, in the user data directory unless
        ``REVENIUM_LEDGER_PATH`` says otherwise; with a key it is kept only when that is set.
        """
        if self.ledger_path is not None:
            return self.ledger_path
        return None if self.api_key is not None else _user_dir("data") / "ledger.sqlite3"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read every ``REVENIUM_*`` variable (and the trace-field fallbacks) once."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field, variable, parse in _ENV_SPEC:
            raw = env.get(variable)
            if raw is None or (raw.strip() == "" and field != "print_summary"):
                continue
            try:
                values[field] = parse(raw.strip(), variable)
            except ValueError as exc:
                warn_once(f"env:{variable}:{raw}", "revenium: ignoring %s: %s", variable, exc)
        if "log_level" not in values and _parse_flag(
            env.get("REVENIUM_DEBUG", "0"), "REVENIUM_DEBUG"
        ):
            values["log_level"] = "DEBUG"
        values["defaults"] = _defaults_from_env(env)
        return cls(**values)


def _parse_flag(raw: str, variable: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    warn_once(
        f"flag:{variable}:{raw}",
        "revenium: %s=%r is not a yes/no value (use 1/true/yes/on or 0/false/no/off); "
        "treating it as off",
        variable,
        raw,
    )
    return False


# Numeric settings: (type, minimum). The environment and configure() enforce the same limits.
_NUMBERS: Final[dict[str, tuple[type[int] | type[float], float]]] = {
    "cb_poll_interval_seconds": (float, 1),
    "cb_startup_wait_seconds": (float, 0),
    "timeout_seconds": (float, 0.1),
    "connect_timeout_seconds": (float, 0.1),
    "shutdown_timeout_seconds": (float, 0),
    "max_retries": (int, 0),
    "max_concurrency": (int, 1),
    "queue_size": (int, 100),
    "max_prompt_size": (int, 200),
}


def _number(field: str) -> Callable[[str, str], Any]:
    return _parse_number(*_NUMBERS[field])


def _parse_number(kind: type[int] | type[float], minimum: float) -> Callable[[str, str], Any]:
    def parse(raw: str, _variable: str) -> int | float:
        try:
            value = kind(raw)
        except ValueError:
            raise ValueError(f"{raw!r} is not a {kind.__name__}") from None
        if value < minimum:
            raise ValueError(f"{raw!r} is below the minimum {minimum:g}")
        return value

    return parse


def _parse_key(raw: str, variable: str) -> Secret:
    _check_key_shape(raw, variable)
    return Secret(raw)


def _parse_url(raw: str, _variable: str) -> str:
    parts = urlsplit(raw)
    if parts.query or parts.fragment:
        raise ValueError("a query string or fragment is not allowed in the base URL")
    meter_url(raw)  # raises ValueError with the reason
    return raw


def _parse_level(raw: str, _variable: str) -> str:
    level = raw.upper()
    if level == "WARN":
        level = "WARNING"
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"{raw!r} is not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)")
    return level


def _parse_summary(raw: str, variable: str) -> PrintSummary:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on", "enabled", "human"}:
        return "human"
    if lowered == "json":
        return "json"
    if lowered in {"0", "false", "no", "off", "disabled", ""}:
        return "off"
    raise ValueError(f"{raw!r} is not one of human, json, off (in {variable})")


def _parse_fail_mode(raw: str, _variable: str) -> FailMode:
    lowered = raw.lower()
    if lowered not in {"open", "closed"}:
        raise ValueError(f"{raw!r} is not 'open' or 'closed'")
    return cast("FailMode", lowered)


def _parse_max_prompt(raw: str, variable: str) -> int:
    value = int(_parse_number(int, 1)(raw, variable))
    if value < 200:
        warn_once(f"min-prompt:{raw}", "revenium: %s=%s is below 200; using 200", variable, raw)
    return max(value, 200)


def _parse_aliases(raw: str, _variable: str) -> dict[str, str]:
    """``deployment=model,deployment2=model2``: Azure deployment names to the models behind them."""
    aliases: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, model = item.partition("=")
        if not sep or not name.strip() or not model.strip():
            raise ValueError(f"{item!r} is not name=model")
        aliases[name.strip()] = model.strip()
    return aliases


def _override_aliases(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError("configure(): model_aliases must be a mapping of name to model")
    items = cast("Mapping[object, object]", value)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in items.items()):
        raise TypeError("configure(): model_aliases must map strings to strings")
    return {str(k): str(v) for k, v in items.items()}


def _as_str(raw: str, _variable: str) -> str:
    return raw


def _as_path(raw: str, _variable: str) -> Path:
    return Path(raw).expanduser()


_ENV_SPEC: Final[tuple[tuple[str, str, Callable[[str, str], Any]], ...]] = (
    ("api_key", "REVENIUM_METERING_API_KEY", _parse_key),
    ("base_url", "REVENIUM_METERING_BASE_URL", _parse_url),
    ("log_level", "REVENIUM_LOG_LEVEL", _parse_level),
    ("capture_prompts", "REVENIUM_CAPTURE_PROMPTS", _parse_flag),
    ("max_prompt_size", "REVENIUM_MAX_PROMPT_SIZE", _parse_max_prompt),
    ("capture_error_messages", "REVENIUM_CAPTURE_ERROR_MESSAGES", _parse_flag),
    ("selective_metering", "REVENIUM_SELECTIVE_METERING", _parse_flag),
    ("team_id", "REVENIUM_TEAM_ID", _as_str),
    ("circuit_breaker_enabled", "REVENIUM_CIRCUIT_BREAKER_ENABLED", _parse_flag),
    ("bypass", "REVENIUM_BYPASS", _parse_flag),
    ("enforcement_base_url", "REVENIUM_ENFORCEMENT_BASE_URL", _parse_url),
    (
        "cb_poll_interval_seconds",
        "REVENIUM_CB_POLL_INTERVAL_SECONDS",
        _number("cb_poll_interval_seconds"),
    ),
    ("cb_fail_mode", "REVENIUM_CB_FAIL_MODE", _parse_fail_mode),
    (
        "cb_startup_wait_seconds",
        "REVENIUM_CB_STARTUP_WAIT_SECONDS",
        _number("cb_startup_wait_seconds"),
    ),
    ("cache_dir", "REVENIUM_CACHE_DIR", _as_path),
    ("timeout_seconds", "REVENIUM_METERING_TIMEOUT_SECONDS", _number("timeout_seconds")),
    (
        "connect_timeout_seconds",
        "REVENIUM_METERING_CONNECT_TIMEOUT_SECONDS",
        _number("connect_timeout_seconds"),
    ),
    (
        "shutdown_timeout_seconds",
        "REVENIUM_SHUTDOWN_TIMEOUT_SECONDS",
        _number("shutdown_timeout_seconds"),
    ),
    ("max_retries", "REVENIUM_METERING_MAX_RETRIES", _number("max_retries")),
    ("max_concurrency", "REVENIUM_METERING_WORKERS", _number("max_concurrency")),
    ("queue_size", "REVENIUM_METERING_QUEUE_SIZE", _number("queue_size")),
    ("install_signal_handlers", "REVENIUM_INSTALL_SIGNAL_HANDLERS", _parse_flag),
    ("spool_dir", "REVENIUM_SPOOL_DIR", _as_path),
    ("ledger_path", "REVENIUM_LEDGER_PATH", _as_path),
    ("print_summary", "REVENIUM_PRINT_SUMMARY", _parse_summary),
    ("inject_stream_usage", "REVENIUM_INJECT_STREAM_USAGE", _parse_flag),
    ("model_aliases", "REVENIUM_MODEL_ALIASES", _parse_aliases),
)

_TRACE_ENV: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("environment", ("REVENIUM_ENVIRONMENT", "ENVIRONMENT", "DEPLOYMENT_ENV")),
    (
        "region",
        (
            "REVENIUM_REGION",
            "AWS_REGION",
            "AWS_DEFAULT_REGION",
            "AZURE_REGION",
            "GCP_REGION",
            "GOOGLE_CLOUD_REGION",
        ),
    ),
    ("credential_alias", ("REVENIUM_CREDENTIAL_ALIAS",)),
    ("trace_type", ("REVENIUM_TRACE_TYPE",)),
    ("trace_name", ("REVENIUM_TRACE_NAME",)),
    ("parent_transaction_id", ("REVENIUM_PARENT_TRANSACTION_ID",)),
    ("transaction_name", ("REVENIUM_TRANSACTION_NAME",)),
    ("retry_number", ("REVENIUM_RETRY_NUMBER",)),
    ("ticket_id", ("REVENIUM_TICKET_ID",)),
    ("agentic_job_id", ("REVENIUM_AGENTIC_JOB_ID",)),
    ("agentic_job_name", ("REVENIUM_AGENTIC_JOB_NAME",)),
    ("agentic_job_type", ("REVENIUM_AGENTIC_JOB_TYPE",)),
    ("agentic_job_version", ("REVENIUM_AGENTIC_JOB_VERSION",)),
)


def _defaults_from_env(env: Mapping[str, str]) -> Metadata:
    """Trace fields from the environment: the last fallback under every other source."""
    result = EMPTY
    for field, variables in _TRACE_ENV:
        variable = next((v for v in variables if env.get(v, "").strip()), None)
        if variable is None:
            continue
        text = env[variable].strip()
        raw: object = int(text) if field == "retry_number" and text.isdigit() else text
        try:
            one = parse_metadata({field: raw}, origin=variable, strict=True)
        except ValueError as exc:  # the message starts with the variable's name
            warn_once(f"env:{variable}", "revenium: ignoring %s", exc)
            continue
        result = merge(result, one)
    return result


_lock = threading.Lock()
_current: list[Config] = []  # zero or one element: a list so readers need no ``global``


def get_config() -> Config:
    """The settings in force now; read from the environment on first use, never at import."""
    if _current:
        return _current[0]
    with _lock:
        if not _current:
            _activate(Config.from_env())
        return _current[0]


def _activate(config: Config) -> None:
    previous = _current[0].log_level if _current else None
    _current[:] = [config]
    set_error_hook(config.on_error)
    # Touch the logger only when the setting changes, so a level the application set on the
    # ``revenium`` logger itself survives unrelated configure() calls; unset means inherit.
    if config.log_level != previous:
        logger.setLevel(logging.NOTSET if config.log_level is None else config.log_level)


def reset_config() -> None:
    """Forget the current settings so the next use reads the environment again (tests)."""
    with _lock:
        _current.clear()
        set_error_hook(None)


_FIELDS: Final = {a.name: a for a in attrs.fields(Config)}


def _override_key(value: object) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise TypeError("configure(): api_key must be a string")
    _check_key_shape(value.strip(), "configure(api_key=...)")
    return Secret(value.strip())


def _override_url(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("configure(): a URL setting must be a string")
    return _parse_url(value, "configure()")


def _override_path(value: object) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise TypeError("configure(): a directory or file setting must be a path")
    return Path(cast("str", value)).expanduser()


def _override_defaults(value: object) -> Metadata:
    return parse_metadata(
        cast("Mapping[str, object] | Metadata", value),
        origin="revenium.configure(defaults=...)",
        strict=True,
    )


def _override_hook(value: object) -> ErrorHook:
    if not callable(value):
        raise TypeError("configure(): on_error must be callable as hook(exception, where)")
    return cast("ErrorHook", value)


def _override_number(name: str, value: object) -> int | float:
    kind, minimum = _NUMBERS[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"configure(): {name} must be a number; got {type(value).__name__}")
    if kind is int and not isinstance(value, int):
        raise TypeError(f"configure(): {name} must be a whole number; got {value!r}")
    if value < minimum:
        raise ValueError(f"configure(): {name} must be at least {minimum:g}; got {value!r}")
    return value


_OVERRIDES: Final[dict[str, Callable[[object], object]]] = {
    "api_key": _override_key,
    "base_url": _override_url,
    "enforcement_base_url": _override_url,
    "defaults": _override_defaults,
    "spool_dir": _override_path,
    "ledger_path": _override_path,
    "cache_dir": _override_path,
    "on_error": _override_hook,
    "model_aliases": _override_aliases,
    "print_summary": lambda v: _parse_summary(str(v), "configure(print_summary=...)"),
    "cb_fail_mode": lambda v: _parse_fail_mode(str(v), "cb_fail_mode"),
    "log_level": lambda v: _parse_level(str(v), "log_level"),
}


def _convert_override(name: str, value: object) -> object:
    """Check and convert one ``configure()`` argument; raise where the caller wrote it."""
    default = _FIELDS[name].default
    if value is None:
        if default is not None:
            raise TypeError(f"configure(): {name} cannot be None")
        return None
    special = _OVERRIDES.get(name)
    if special is not None:
        return special(value)
    if name in _NUMBERS:
        return _override_number(name, value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(f"configure(): {name} must be True or False")
    elif not isinstance(value, str):
        raise TypeError(f"configure(): {name} must be a string")
    return value


def configure(**overrides: object) -> Config:
    """Change settings for every call from now on, and return the new ``Config``.

    Callable at any time (``configure(bypass=True)`` during an incident): the whole
    configuration is swapped in one step. Settings not given keep their current value, which
    on first use comes from the environment.
    """
    for name in overrides:
        if name not in _FIELDS:
            hint = get_close_matches(name, list(_FIELDS), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise TypeError(f"configure() got an unknown setting {name!r}{suggestion}")
    converted = {name: _convert_override(name, value) for name, value in overrides.items()}
    with _lock:
        base = _current[0] if _current else Config.from_env()
        config = attrs.evolve(base, **cast("dict[str, Any]", converted))
        if converted.get("circuit_breaker_enabled") is True and config.team_id is None:
            raise ValueError(
                "configure(): cost controls need a team id to fetch their rules: pass "
                "team_id=... (or set REVENIUM_TEAM_ID)"
            )
        _activate(config)
    return config


def reinit_after_fork() -> None:
    """Replace the module lock in a forked child (another thread may have held it)."""
    global _lock  # noqa: PLW0603 - see the docstring
    _lock = threading.Lock()
