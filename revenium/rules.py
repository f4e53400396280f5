"""Cost-control rules: the enforcement feed as immutable values, parsed strictly.

The Revenium API publishes, per team, the rules whose budgets are exhausted (``GET
/v2/api/ai/enforcement-rules/{teamId}``; the poller in :mod:`revenium.enforcement` fetches it).
:func:`parse_feed` turns a decoded JSON body into a :class:`RuleFeed`, or rejects it *as a
whole* with :class:`MalformedFeedError`, naming each wrong field by its JSON path, so a broken
feed never replaces the last good rules with half of itself. ``null`` means absent; a string
where a list or an object belongs is an error, never split into characters.

The per-call check over a feed is :mod:`revenium.rule_check`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast, get_args, get_origin

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.strategies import configure_union_passthrough

from revenium._names import camel

__all__ = [
    "Candidate",
    "Filter",
    "GroupEntry",
    "MalformedFeedError",
    "Rule",
    "RuleFeed",
    "RuleId",
    "normalize_email",
    "parse_feed",
]

RuleId = int | str


@attrs.frozen
class Filter:
    """One condition of a rule: ``dimension operator value(s)``."""

    dimension: str
    operator: str = "IS"
    value: str | None = None
    values: tuple[str, ...] = ()


@attrs.frozen
class GroupEntry:
    """A grouped rule's standing for one group (one subscriber, one credential...)."""

    group_value: str | None = None
    breached: bool = False
    current_value: float | None = None


@attrs.frozen
class Rule:
    """One enforcement rule, with the fields the check reads."""

    rule_id: RuleId | None = None
    name: str | None = None
    action: str | None = None
    shadow_mode: bool = False
    breached: bool = False
    blocked: bool = False  # the older name of ``breached``
    current_value: float | None = None
    threshold: float | None = None
    resets_at: str | None = None
    window_end: datetime | None = None
    deny_message: str | None = None
    group_by: str | None = None
    group_breakdown: tuple[GroupEntry, ...] = ()
    filters: tuple[Filter, ...] = ()
    department_id: RuleId | None = None
    org_unit_id: RuleId | None = None
    credential: str | None = None

    @property
    def is_department_rule(self) -> bool:
        """Department budgets are decided by the server, per subscriber email."""
        grouped_by = (self.group_by or "").upper()
        return (
            self.department_id is not None
            or self.org_unit_id is not None
            or grouped_by in {"DEPARTMENT", "ORG_UNIT"}
        )


@attrs.frozen
class Candidate:
    """A department rule that may apply to a subscriber, to be filtered by its rule's filters."""

    rule_id: RuleId | None = None
    tier: str | None = None
    department_id: RuleId | None = None
    balance: float | None = None


@attrs.frozen
class RuleFeed:
    """One fetched feed: immutable, swapped whole by the poller."""

    rules: tuple[Rule, ...] = ()
    compiled_at: str | None = None
    department_blocks: Mapping[str, RuleId] = MappingProxyType({})
    department_block_balances: Mapping[str, float] = MappingProxyType({})
    department_warnings: Mapping[str, RuleId] = MappingProxyType({})
    department_candidates: Mapping[str, tuple[Candidate, ...]] = MappingProxyType({})

    @functools.cached_property
    def no_departments(self) -> bool:
        return not (
            self.department_blocks or self.department_candidates or self.department_warnings
        )

    @functools.cached_property
    def inert(self) -> bool:
        """Nothing here can block or warn: the check can skip building the call's facts."""
        return not self.rules and self.no_departments

    @functools.cached_property
    def index(self) -> Any:
        """The rules compiled for the per-call check (a ``rule_check.RuleIndex``, built once)."""
        from revenium.rule_check import RuleIndex  # noqa: PLC0415 - the check's own module

        return RuleIndex.build(self.rules)


EMPTY_FEED: Final = RuleFeed()

# ----------------------------------------------------------------------------- parsing


def normalize_email(email: str) -> str:
    """How emails compare: trimmed and lower-cased."""
    return email.strip().lower()


class MalformedFeedError(ValueError):
    """The feed was rejected as a whole; ``problems`` name each wrong field by its JSON path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_LEGACY_KEYS: Final = {
    "orgUnitBudgetBlocks": "departmentBudgetBlocks",
    "orgUnitBudgetBlockBalances": "departmentBudgetBlockBalances",
    "orgUnitBudgetWarnings": "departmentBudgetWarnings",
    "orgUnitBudgetCandidates": "departmentBudgetCandidates",
}
_FEED_KEYS: Final = {
    "department_blocks": "departmentBudgetBlocks",
    "department_block_balances": "departmentBudgetBlockBalances",
    "department_warnings": "departmentBudgetWarnings",
    "department_candidates": "departmentBudgetCandidates",
}


def _strict_bool(value: object, _type: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected true or false, got {value!r}")


def _text(value: object, _type: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # a numeric id or filter value
    raise ValueError(f"expected text, got {type(value).__name__}")


def _number(value: object, _type: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        return float(value)  # a decimal sent as text; "abc" raises ValueError
    raise ValueError(f"expected a number, got {type(value).__name__}")


_FRACTION: Final = re.compile(r"(\.\d{6})\d+")  # the server sends nanoseconds


def parse_time(value: object, _type: object = None) -> datetime:
    """An ISO-8601 instant (``Z`` or an offset, up to nanoseconds); naive means UTC."""
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO-8601 time, got {type(value).__name__}")
    parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


T = TypeVar("T")


def _object_hook(
    structure: Callable[[Mapping[str, Any], Any], T],
) -> Callable[[object, Any], T]:
    """Only a JSON object structures into a class; its ``null`` fields count as absent."""

    def hook(value: object, kind: Any) -> T:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {type(value).__name__}")
        fields = cast("dict[str, object]", value)
        return structure({k: v for k, v in fields.items() if v is not None}, kind)

    return hook


def _is_sequence(kind: Any) -> bool:
    return get_origin(kind) is tuple


def _sequence_hook(converter: cattrs.Converter) -> Callable[[Any], Callable[[object, Any], Any]]:
    """Only a JSON list structures into a tuple (a string is never split into characters)."""

    def factory(kind: Any) -> Callable[[object, Any], Any]:
        item = get_args(kind)[0]

        def hook(value: object, _kind: Any) -> tuple[Any, ...]:
            if not isinstance(value, list):
                raise ValueError(f"expected a list, got {type(value).__name__}")
            return tuple(converter.structure(value, cast("Any", list)[item]))

        return hook

    return factory


def _is_mapping(kind: Any) -> bool:
    return get_origin(kind) is cast("Any", Mapping)


def _mapping_hook(value: object, kind: Any) -> dict[str, Any]:
    """Only a JSON object structures into a mapping (department maps)."""
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {type(value).__name__}")
    result: dict[str, Any] = _converter().structure(value, cast("Any", dict)[get_args(kind)])
    return result


def _build_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(str, _text)
    converter.register_structure_hook(float, _number)
    converter.register_structure_hook(datetime, parse_time)
    # ``RuleId`` (int | str): an int stays an int, text stays text, anything else is wrong.
    configure_union_passthrough(int | str | None, converter)
    converter.register_structure_hook_factory(_is_sequence, _sequence_hook(converter))
    converter.register_structure_hook_func(_is_mapping, _mapping_hook)
    for cls in (Filter, GroupEntry, Rule, Candidate, RuleFeed):
        keys = _FEED_KEYS if cls is RuleFeed else {}
        renames = {
            a.name: override(rename=keys.get(a.name, camel(a.name))) for a in attrs.fields(cls)
        }
        generated = make_dict_structure_fn(cls, converter, **renames)  # type: ignore[arg-type]
        converter.register_structure_hook(cls, _object_hook(generated))
    return converter


@functools.cache
def _converter() -> cattrs.Converter:
    return _build_converter()


def _normalize_emails(feed: RuleFeed) -> RuleFeed:
    """Department maps are keyed by email: trimmed and lower-cased, as the check looks them up."""

    def keys(mapping: Mapping[str, T]) -> dict[str, T]:
        return {normalize_email(k): v for k, v in mapping.items()}

    return attrs.evolve(
        feed,
        department_blocks=keys(feed.department_blocks),
        department_block_balances=keys(feed.department_block_balances),
        department_warnings=keys(feed.department_warnings),
        department_candidates=keys(feed.department_candidates),
    )


def parse_feed(body: object) -> RuleFeed:
    """Structure a decoded JSON body into a feed; :class:`MalformedFeedError` names what was wrong.

    A bare list is the rules alone. The older ``orgUnitBudget*`` keys are read as the
    ``departmentBudget*`` ones (a key of each name: the current one wins). Unknown keys are
    ignored (the server may add fields); ``null`` is the same as absent.
    """
    if isinstance(body, list):
        items: dict[Any, Any] = {"rules": body}
    elif isinstance(body, dict):
        items = dict[Any, Any](body)  # pyright: ignore[reportUnknownArgumentType]
    else:
        kind = type(body).__name__
        raise MalformedFeedError([f"expected an object or a list of rules, got {kind}"])
    spelled: dict[str, str] = {}  # current name -> the name this feed used
    fields: dict[str, object] = {}
    for key, value in items.items():
        name = _LEGACY_KEYS.get(str(key), str(key))
        if name != key and name in items:
            continue  # both spellings: the current one wins
        spelled[name] = str(key)
        fields[name] = value
    try:
        return _normalize_emails(_converter().structure(fields, RuleFeed))
    except Exception as exc:  # noqa: BLE001 - every structuring failure is a malformed feed
        if isinstance(exc, cattrs.BaseValidationError):
            problems = cattrs.transform_error(exc, path="$")
        else:
            problems = [str(exc)]
        raise MalformedFeedError([_wire_path(p, spelled) for p in problems]) from None


def _wire_path(problem: str, spelled: Mapping[str, str]) -> str:
    """Name fields as the feed spells them (``$.rules[0].ruleId``), not as Python does."""
    message, _, path = problem.rpartition(" @ ")
    if not message:
        return problem

    def name(match: re.Match[str]) -> str:
        wire = _FEED_KEYS.get(match.group(1), camel(match.group(1)))
        return "." + spelled.get(wire, wire)

    path = re.sub(r"\.([a-z_]+)", name, path)
    # department maps are keyed by email: a log line must not carry a subscriber's address
    return f"{message} @ " + re.sub(r"\['[^']*@[^']*'\]", "['<email>']", path)
