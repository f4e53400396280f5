"""Business metadata (attribution): who a paid call was for, as one validated, immutable value.

Users declare metadata in several places (``session()``, ``@metadata``, ``wrap(metadata=...)``,
a per-call ``usage_metadata=`` and ``REVENIUM_*`` environment variables), in snake_case or the
seed SDK's camelCase. All of those meet here, once, at the edge: :func:`parse_metadata` turns a
mapping into a :class:`Metadata` and everything after it uses one spelling.

Two modes, because the two kinds of source deserve different treatment:

- *strict* (``session()``, ``@metadata``, ``wrap()``): a mistake is a programming error in code
  the user is writing right now, so it raises ``ValueError`` there, naming the field.
- *lenient* (per-call ``usage_metadata``, environment): raising would break a provider call or a
  process start, so the bad field is dropped with one warning and the rest is kept.

``None`` and ``""`` mean "not set" everywhere, so an inner scope never blanks an outer value.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping
from difflib import get_close_matches
from typing import Any, Final, cast

import attrs

from revenium._diagnostics import external_stacklevel, warn_once
from revenium._names import camel

__all__ = ["EMPTY", "Credential", "Metadata", "Subscriber", "merge", "parse_metadata"]

_TRACE_TYPE: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")
_AGENTIC_JOB_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_RESERVED_JOB_IDS: Final = frozenset({"types", "conversion-funnel"})


def _optional_str(_inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{attribute.name} must be a string; got {type(value).__name__}")


def _check_trace_type(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str) or _TRACE_TYPE.fullmatch(value) is None:
        raise ValueError(
            f"trace_type must be 1 to 128 characters of letters, digits, '_' and '-'; got {value!r}"
        )


def _check_trace_name(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ValueError(f"trace_name must be a string; got {type(value).__name__}")
    if len(value) > 256:
        raise ValueError(f"trace_name must be at most 256 characters; got {len(value)}")


def _check_quality(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"response_quality_score must be a number from 0 to 1; got {value!r}")


def _check_retry_number(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"retry_number must be a whole number >= 0; got {value!r}")


def _check_agentic_job_id(_inst: object, _attribute: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if (
        not isinstance(value, str)
        or _AGENTIC_JOB_ID.fullmatch(value) is None
        or value in _RESERVED_JOB_IDS
    ):
        raise ValueError(
            "agentic_job_id must start with a letter or digit and have at most 255 characters "
            "of letters, digits, '.', '_' and '-' (not 'types' or 'conversion-funnel'); "
            f"got {value!r}"
        )


def _str_field() -> Any:
    return attrs.field(default=None, validator=_optional_str)


@attrs.frozen
class Credential:
    """The credential a subscriber used (name shown in dashboards, value kept out of reprs)."""

    name: str | None = attrs.field(default=None, validator=_optional_str)
    value: str | None = attrs.field(default=None, validator=_optional_str, repr=False)


@attrs.frozen
class Subscriber:
    """The end user a call was made for: an id, an email, or the credential they used."""

    id: str | None = attrs.field(default=None, validator=_optional_str)
    email: str | None = attrs.field(default=None, validator=_optional_str)
    credential: Credential | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Credential))
    )


@attrs.frozen(kw_only=True, repr=False)
class Metadata:
    """Every attribution field the Revenium API knows, all optional, in snake_case.

    Build it from a mapping with :func:`parse_metadata` (which accepts camelCase and the legacy
    aliases); constructing it directly validates each field the same way.
    """

    trace_id: str | None = _str_field()
    task_type: str | None = _str_field()
    subscriber: Subscriber | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(Subscriber))
    )
    organization_name: str | None = _str_field()
    subscription_id: str | None = _str_field()
    product_name: str | None = _str_field()
    agent: str | None = _str_field()
    agent_version: str | None = _str_field()
    response_quality_score: float | None = attrs.field(default=None, validator=_check_quality)
    environment: str | None = _str_field()
    region: str | None = _str_field()
    credential_alias: str | None = _str_field()
    trace_type: str | None = attrs.field(default=None, validator=_check_trace_type)
    trace_name: str | None = attrs.field(default=None, validator=_check_trace_name)
    parent_transaction_id: str | None = _str_field()
    transaction_name: str | None = _str_field()
    retry_number: int | None = attrs.field(default=None, validator=_check_retry_number)
    ticket_id: str | None = _str_field()
    agentic_job_id: str | None = attrs.field(default=None, validator=_check_agentic_job_id)
    agentic_job_name: str | None = _str_field()
    agentic_job_type: str | None = _str_field()
    agentic_job_version: str | None = _str_field()
    squad_id: str | None = _str_field()
    squad_name: str | None = _str_field()
    squad_role: str | None = _str_field()

    def items(self) -> dict[str, object]:
        """The fields that are set, by snake_case name."""
        return {name: value for name in FIELD_NAMES if (value := getattr(self, name)) is not None}

    def __repr__(self) -> str:
        # Only the fields that are set: 25 ``None``s would hide what matters in logs and tests.
        inner = ", ".join(f"{name}={value!r}" for name, value in self.items().items())
        return f"Metadata({inner})"


FIELD_NAMES: Final[tuple[str, ...]] = tuple(a.name for a in attrs.fields(Metadata))
EMPTY: Final = Metadata()


_ALIASES: Final[dict[str, str]] = {
    **{name: name for name in FIELD_NAMES},
    **{camel(name): name for name in FIELD_NAMES},
}
_LEGACY: Final[dict[str, str]] = {
    "organization_id": "organization_name",
    "organizationId": "organization_name",
    "product_id": "product_name",
    "productId": "product_name",
}
_FLAT_SUBSCRIBER: Final[dict[str, str]] = {
    "subscriber_id": "id",
    "subscriberId": "id",
    "subscriber_email": "email",
    "subscriberEmail": "email",
    "subscriber_credential_name": "credential_name",
    "subscriberCredentialName": "credential_name",
    "subscriber_credential": "credential_value",
    "subscriberCredential": "credential_value",
}
_VALIDATORS: Final[dict[str, Callable[[object, attrs.Attribute[Any], object], None]]] = {
    a.name: a.validator for a in attrs.fields(Metadata) if a.validator is not None
}
_ATTRIBUTES: Final = {a.name: a for a in attrs.fields(Metadata)}


def _unset(value: object) -> bool:
    return value is None or value == ""


def _fields_of(
    value: object, what: str, example: str, allowed: tuple[str, ...]
) -> dict[str, object]:
    """The set fields of a nested mapping (subscriber, credential), unknown keys rejected."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a mapping such as {example}; got {type(value).__name__}")
    items = cast("Mapping[object, object]", value)
    unknown = sorted(str(k) for k in items if k not in allowed)
    if unknown:
        raise ValueError(f"unknown {what} field {unknown[0]!r} (use {', '.join(allowed)})")
    return {str(k): v for k, v in items.items() if not _unset(v)}


def _text(value: object, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"{what} must be a string; got {type(value).__name__}")


def _parse_credential(value: object) -> Credential | None:
    if isinstance(value, Credential):
        return value
    fields = _fields_of(
        value, "subscriber.credential", "{'name': ..., 'value': ...}", ("name", "value")
    )
    if not fields:
        return None
    return Credential(
        name=_text(fields.get("name"), "subscriber.credential.name"),
        value=_text(fields.get("value"), "subscriber.credential.value"),
    )


def _parse_subscriber(value: object) -> Subscriber | None:
    if isinstance(value, Subscriber):
        return value
    fields = _fields_of(
        value, "subscriber", "{'id': ..., 'email': ...}", ("id", "email", "credential")
    )
    raw_id = fields.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        raw_id = str(raw_id)  # numeric user ids are common; the wire wants a string
    credential = _parse_credential(fields["credential"]) if "credential" in fields else None
    if raw_id is None and "email" not in fields and credential is None:
        return None
    return Subscriber(
        id=_text(raw_id, "subscriber.id"),
        email=_text(fields.get("email"), "subscriber.email"),
        credential=credential,
    )


def _unknown_key_message(key: object) -> str:
    hint = get_close_matches(str(key), [*_ALIASES, *_LEGACY], n=1)
    suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
    return f"unknown metadata field {key!r}{suggestion}"


class _Problems:
    """Collects problems: raises at the first in strict mode, warns once each otherwise."""

    def __init__(self, origin: str, *, strict: bool) -> None:
        self.origin = origin
        self.strict = strict

    def add(self, key: str, message: str) -> None:
        if self.strict:
            raise ValueError(f"{self.origin}: {message}")
        warn_once(
            f"metadata:{self.origin}:{key}:{message}",
            "revenium: ignoring invalid metadata from %s: %s",
            self.origin,
            message,
        )

    def deprecated(self, legacy: str, name: str) -> None:
        message = f"metadata field {legacy!r} is deprecated; use {name!r} instead"
        if self.strict:
            warnings.warn(message, DeprecationWarning, stacklevel=external_stacklevel())
            return
        try:  # under -W error a warning raises, and nothing may raise into a provider call
            warnings.warn(message, DeprecationWarning, stacklevel=external_stacklevel())
        except Warning:
            warn_once(f"deprecated:{legacy}", "revenium: %s", message)


def _collect(source: Mapping[object, object], problems: _Problems) -> dict[str, object]:
    """Resolve every key to its snake_case field; aliases and flat subscriber keys folded in."""
    values: dict[str, object] = {}
    spelled: dict[str, object] = {}
    legacy: dict[str, tuple[str, object]] = {}
    flat: dict[str, object] = {}
    for key, value in source.items():
        name = _ALIASES.get(key) if isinstance(key, str) else None
        if name is None:
            if isinstance(key, str) and key in _LEGACY:
                legacy[_LEGACY[key]] = (key, value)
            elif isinstance(key, str) and key in _FLAT_SUBSCRIBER:
                flat[_FLAT_SUBSCRIBER[key]] = value
            else:
                problems.add(str(key), _unknown_key_message(key))
        elif _unset(value):
            continue
        elif name in values and values[name] != value:
            problems.add(
                name,
                f"{name} given twice (as {spelled[name]!r} and {key!r}) with different values",
            )
        else:
            values[name], spelled[name] = value, key
    for name, (key, value) in legacy.items():
        problems.deprecated(key, name)
        if name not in values and not _unset(value):
            values[name] = value
    if flat and "subscriber" not in values:
        credential = {"name": flat.get("credential_name"), "value": flat.get("credential_value")}
        values["subscriber"] = {
            "id": flat.get("id"),
            "email": flat.get("email"),
            "credential": credential,
        }
    return values


def parse_metadata(
    source: Mapping[str, object] | Metadata | None,
    *,
    origin: str,
    strict: bool,
) -> Metadata:
    """Validate ``source`` into a :class:`Metadata`.

    ``origin`` names where the metadata came from (``"revenium.session()"``) so that the error a
    user sees points at their own code; the ``DeprecationWarning`` of a legacy alias points at
    the user's line too.
    """
    if source is None:
        return EMPTY
    if isinstance(source, Metadata):
        return source
    problems = _Problems(origin, strict=strict)
    given = cast("object", source)  # typed callers pass a mapping; untyped ones may not
    if not isinstance(given, Mapping):
        problems.add("<mapping>", f"metadata must be a mapping; got {type(given).__name__}")
        return EMPTY
    items = cast("Mapping[object, object]", given)
    clean: dict[str, object] = {}
    for name, value in _collect(items, problems).items():
        try:
            converted = _parse_subscriber(value) if name == "subscriber" else value
            if converted is None:
                continue
            validator = _VALIDATORS.get(name)
            if validator is not None:
                validator(None, _ATTRIBUTES[name], converted)
        except ValueError as exc:
            problems.add(name, str(exc))
            continue
        clean[name] = converted
    return Metadata(**clean) if clean else EMPTY  # type: ignore[arg-type]


def merge(outer: Metadata, inner: Metadata) -> Metadata:
    """Field by field, ``inner`` wins where it is set; an unset inner field keeps ``outer``'s.

    The subscriber is one field: an inner subscriber replaces the outer one whole, so one
    person's id is never combined with another person's email.
    """
    if inner is EMPTY:
        return outer
    if outer is EMPTY:
        return inner
    merged = object.__new__(Metadata)
    for name in FIELD_NAMES:  # both sides are already valid, so skip re-validation
        value = getattr(inner, name)
        object.__setattr__(merged, name, getattr(outer, name) if value is None else value)
    return merged
