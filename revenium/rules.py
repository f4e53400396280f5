"""Cost-control rules: the enforcement feed as immutable values, and the pure check of a call.

The Revenium API publishes, per team, the rules whose budgets are exhausted (``GET
/v2/api/ai/enforcement-rules/{teamId}``; the poller in :mod:`revenium.enforcement` fetches it).
This module has no I/O and no state: :func:`parse_feed` turns a JSON body into a
:class:`RuleFeed` (or rejects it as a whole, naming the field that was wrong), and
:func:`evaluate` decides, for one call's :class:`CallFacts`, whether a rule blocks it. The
check runs before every metered call, so it reads one immutable snapshot, takes no lock and
allocates little: microseconds even with a thousand rules (``docs/benchmarks.md``).

Matching follows the Revenium server's semantics (``docs/cost-controls.md`` has the table):
every filter of a rule must match; a call with no value for a dimension matches only
``IS_NOT``; a filter this version cannot evaluate keeps the rule in force (failing safe for
the budget owner); a rule past its ``windowEnd``, or in ``shadowMode``, never blocks; only
``BLOCK`` (or no action) blocks, other actions warn.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.strategies import configure_union_passthrough

__all__ = [
    "CallFacts",
    "Candidate",
    "Filter",
    "GroupEntry",
    "MalformedFeedError",
    "Outcome",
    "Rule",
    "RuleFeed",
    "evaluate",
    "model_family",
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
    def inert(self) -> bool:
        """Nothing here can block or warn: the check can skip building the call's facts."""
        return not self.rules and not (
            self.department_blocks or self.department_candidates or self.department_warnings
        )

    @functools.cached_property
    def index(self) -> RuleIndex:
        """The rules compiled for the per-call check (built once per feed, on first use)."""
        return RuleIndex.build(self.rules)


EMPTY_FEED: Final = RuleFeed()

# ----------------------------------------------------------------------------- parsing


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


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


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


def _build_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=False)
    converter.register_structure_hook(bool, _strict_bool)
    converter.register_structure_hook(str, _text)
    converter.register_structure_hook(float, _number)
    converter.register_structure_hook(datetime, parse_time)
    # ``RuleId`` (int | str): an int stays an int, text stays text, anything else is wrong.
    configure_union_passthrough(int | str | None, converter)
    for cls in (Filter, GroupEntry, Rule, Candidate):
        renames = {a.name: override(rename=_camel(a.name)) for a in attrs.fields(cls)}
        converter.register_structure_hook(cls, make_dict_structure_fn(cls, converter, **renames))  # type: ignore[arg-type]
    feed_renames = {
        a.name: override(rename=_FEED_KEYS.get(a.name, _camel(a.name)))
        for a in attrs.fields(RuleFeed)
    }
    converter.register_structure_hook(
        RuleFeed,
        make_dict_structure_fn(RuleFeed, converter, **feed_renames),  # type: ignore[arg-type]
    )
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
    ``departmentBudget*`` ones. Unknown keys are ignored (the server may add fields).
    """
    if isinstance(body, list):
        items: dict[Any, Any] = {"rules": body}
    elif isinstance(body, dict):
        items = dict[Any, Any](body)  # pyright: ignore[reportUnknownArgumentType]
    else:
        kind = type(body).__name__
        raise MalformedFeedError([f"expected an object or a list of rules, got {kind}"])
    fields = {_LEGACY_KEYS.get(str(k), str(k)): v for k, v in items.items()}
    for key in ("rules", *_FEED_KEYS.values()):
        if fields.get(key) is None:
            fields.pop(key, None)  # ``null`` is the same as absent
    try:
        return _normalize_emails(_converter().structure(fields, RuleFeed))
    except Exception as exc:  # noqa: BLE001 - every structuring failure is a malformed feed
        if isinstance(exc, cattrs.BaseValidationError):
            problems = cattrs.transform_error(exc, path="$")
        else:
            problems = [str(exc)]
        raise MalformedFeedError([_wire_path(p) for p in problems]) from None


def _wire_path(problem: str) -> str:
    """Name fields as the feed spells them (``$.rules[0].ruleId``), not as Python does."""
    message, _, path = problem.rpartition(" @ ")
    if not message:
        return problem
    return f"{message} @ " + re.sub(
        r"\.([a-z_]+)", lambda m: "." + _FEED_KEYS.get(m.group(1), _camel(m.group(1))), path
    )


# ----------------------------------------------------------------------------- matching


@attrs.frozen
class CallFacts:
    """What the check knows about a call before it is made (all values as the call has them)."""

    model: str | None = None
    provider: str | None = None
    agent: str | None = None
    task_type: str | None = None
    product: str | None = None
    organization: str | None = None
    subscriber_id: str | None = None
    subscriber_email: str | None = None
    credential_name: str | None = None
    credential_value: str | None = None


@attrs.frozen
class Outcome:
    """What the rules say about a call: the rule that blocks it, and rules that only warn."""

    blocking: Rule | None = None
    warnings: tuple[Rule, ...] = ()


ALLOW: Final = Outcome()


def normalize_email(email: str) -> str:
    return email.strip().lower()


_DATED: Final = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-latest)$")


@functools.lru_cache(maxsize=4096)  # a process calls few models: normalize each once
def model_family(model: str) -> str:
    """A model name without its snapshot date or ``-latest`` alias (and ``maker/`` prefix).

    ``gpt-4o-2024-08-06`` and ``gpt-4o-latest`` are ``gpt-4o``; ``gpt-4o-mini`` stays itself,
    so a ``gpt-4o`` rule never catches the smaller model.
    """
    name = model.strip().lower().rsplit("/", 1)[-1].split("@", 1)[0]
    return _DATED.sub("", name)


_PROVIDER_ALIASES: Final = {
    "FOUNDRY": "ANTHROPIC",
    "CLAUDECODE": "ANTHROPIC",
    "CLAUDECOWORK": "ANTHROPIC",
    "CODEXCLI": "OPENAI",
    "GEMINICLI": "GOOGLE",
}


def _provider(value: str) -> str:
    upper = value.strip().upper()
    return _PROVIDER_ALIASES.get(upper, upper)


def _subjects(dimension: str, facts: CallFacts) -> tuple[str, ...] | None:
    """The call's value(s) for a dimension, normalized; ``None``: a dimension not known here."""
    raw: tuple[str | None, ...]
    if dimension == "MODEL":
        raw = (facts.model,)
    elif dimension == "PROVIDER":
        raw = (facts.provider,)
    elif dimension == "AGENT":
        raw = (facts.agent,)
    elif dimension == "TASK_TYPE":
        raw = (facts.task_type,)
    elif dimension == "PRODUCT":
        raw = (facts.product,)
    elif dimension == "ORGANIZATION":
        raw = (facts.organization,)
    elif dimension == "SUBSCRIBER":
        raw = (facts.subscriber_email, facts.subscriber_id)
    elif dimension == "CREDENTIAL":
        raw = (facts.credential_name, facts.credential_value)
    else:
        return None
    return tuple(_normal(dimension, v) for v in raw if v)


def _normal(dimension: str, value: str) -> str:
    if dimension == "MODEL":
        return model_family(value)
    if dimension == "PROVIDER":
        return _provider(value)
    if dimension == "SUBSCRIBER":
        return normalize_email(value)
    return value


_Test = Callable[[str, str], bool]
_TEXT_TESTS: Final[Mapping[str, _Test]] = {
    "CONTAINS": lambda subject, value: value in subject,
    "STARTS_WITH": lambda subject, value: subject.startswith(value),
    "ENDS_WITH": lambda subject, value: subject.endswith(value),
}
_DIMENSIONS: Final = frozenset(
    {"MODEL", "PROVIDER", "AGENT", "TASK_TYPE", "PRODUCT", "ORGANIZATION", "SUBSCRIBER",
     "CREDENTIAL"}
)  # fmt: skip


@attrs.frozen
class _Condition:
    """One filter, its values normalized once, when the feed is compiled."""

    dimension: str
    operator: str  # IS (IN too), IS_NOT, or a text test
    wanted: frozenset[str]
    text: tuple[str, ...]  # the values for text tests (a model's raw name, lower-cased)

    @classmethod
    def compile(cls, flt: Filter) -> _Condition | None:
        """``None`` for a filter this version cannot evaluate: it keeps its rule in force."""
        dimension, operator = flt.dimension.upper(), flt.operator.upper()
        if operator == "IN" and flt.values:
            values = flt.values
        else:
            values = (flt.value,) if flt.value is not None else flt.values
        values = tuple(v for v in values if v)
        known = operator in {"IS", "IN", "IS_NOT"} or operator in _TEXT_TESTS
        if dimension not in _DIMENSIONS or not known or not values:
            return None
        wanted = frozenset(_normal(dimension, v) for v in values)
        text = tuple(v.lower() for v in values) if dimension == "MODEL" else tuple(wanted)
        return cls(dimension, "IS" if operator == "IN" else operator, wanted, text)

    def matches(self, subjects: _Subjects) -> bool:
        found = subjects.of(self.dimension)
        if self.operator == "IS_NOT":
            return self.wanted.isdisjoint(found)
        if not found:
            return False  # no value for this dimension: only IS_NOT matches
        if self.operator == "IS":
            return not self.wanted.isdisjoint(found)
        if self.dimension == "MODEL":  # text tests read the name as given, not its family
            found = subjects.model_text
        test = _TEXT_TESTS[self.operator]
        return any(test(s, w) for s in found for w in self.text)


@attrs.frozen
class _Compiled:
    position: int
    rule: Rule
    tests: tuple[_Condition, ...]

    def applies(self, subjects: _Subjects) -> bool:
        rule = self.rule
        if rule.credential is not None and rule.credential not in subjects.credentials:
            return False
        return all(test.matches(subjects) for test in self.tests)


@attrs.frozen
class RuleIndex:
    """Per-call rules, indexed by one value each must match.

    Most rules name what they limit (``MODEL IS gpt-4o``, ``ORGANIZATION IS Acme``). Each rule
    is filed under its most selective ``IS``/``IN`` condition (the one whose values the fewest
    rules share), so a call looks up its own values and evaluates only rules that can apply to
    it, plus the rules with no such condition: a thousand rules cost about what ten do. Rules
    that can never block or warn (department and shadow-mode rules, pooled rules within
    budget) are left out.
    """

    buckets: Mapping[tuple[str, str], tuple[_Compiled, ...]]
    dimensions: tuple[str, ...]  # the dimensions some bucket is keyed by
    anywhere: tuple[_Compiled, ...]
    by_id: Mapping[str, _Compiled]

    @classmethod
    def build(cls, rules: tuple[Rule, ...]) -> RuleIndex:
        compiled: list[_Compiled] = []
        by_id: dict[str, _Compiled] = {}
        for position, rule in enumerate(rules):
            tests = tuple(t for f in rule.filters if (t := _Condition.compile(f)) is not None)
            entry = _Compiled(position, rule, tests)
            if rule.rule_id is not None:
                by_id.setdefault(str(rule.rule_id), entry)
            grouped = bool(rule.group_breakdown or rule.group_by)
            if rule.is_department_rule or rule.shadow_mode:
                continue
            if grouped or rule.breached or rule.blocked:  # else: a pooled rule within budget
                compiled.append(entry)
        shared = Counter(
            (t.dimension, v) for c in compiled for t in c.tests if t.operator == "IS"
            for v in t.wanted
        )  # fmt: skip
        buckets: dict[tuple[str, str], list[_Compiled]] = {}
        anywhere: list[_Compiled] = []
        for entry in compiled:
            keyed = [t for t in entry.tests if t.operator == "IS"]
            if not keyed:
                anywhere.append(entry)
                continue
            best = min(keyed, key=lambda t: sum(shared[(t.dimension, v)] for v in t.wanted))
            for value in best.wanted:
                buckets.setdefault((best.dimension, value), []).append(entry)
        return cls(
            buckets={k: tuple(v) for k, v in buckets.items()},
            dimensions=tuple(sorted({dimension for dimension, _ in buckets})),
            anywhere=tuple(anywhere),
            by_id=by_id,
        )

    def candidates(self, subjects: _Subjects) -> tuple[_Compiled, ...]:
        """The rules that may apply to this call, in the feed's order."""
        found: list[_Compiled] = []
        for dimension in self.dimensions:
            for value in subjects.of(dimension):
                found.extend(self.buckets.get((dimension, value), ()))
        if not found:
            return self.anywhere
        found.extend(self.anywhere)
        return tuple(sorted(set(found), key=lambda c: c.position))


class _Subjects:
    """A call's values per dimension, normalized once per check (and only when asked)."""

    __slots__ = ("_cache", "credentials", "facts", "family", "model_text")

    def __init__(self, facts: CallFacts) -> None:
        self.facts = facts
        self.family = model_family(facts.model) if facts.model else None
        self.model_text = (facts.model.lower(),) if facts.model else ()
        self.credentials = {facts.credential_name, facts.credential_value} - {None}
        self._cache: dict[str, tuple[str, ...]] = {}

    def of(self, dimension: str) -> tuple[str, ...]:
        found = self._cache.get(dimension)
        if found is None:
            found = self._cache[dimension] = _subjects(dimension, self.facts) or ()
        return found


def _expired(rule: Rule, now: datetime) -> bool:
    return rule.window_end is not None and rule.window_end <= now


def _own_entry(rule: Rule, facts: CallFacts) -> GroupEntry | None:
    """A grouped rule's entry for this caller: by subscriber id, normalized email, raw email."""
    keys: list[str] = []
    if facts.subscriber_id:
        keys.append(facts.subscriber_id)
    if facts.subscriber_email:
        keys += [normalize_email(facts.subscriber_email), facts.subscriber_email]
    for key in keys:
        for entry in rule.group_breakdown:
            if entry.group_value is not None and entry.group_value in {key, key.lower()}:
                return entry
    return None


def _tripped(rule: Rule, facts: CallFacts) -> bool:
    if rule.group_breakdown or rule.group_by:
        entry = _own_entry(rule, facts)
        return entry is not None and entry.breached
    return rule.breached or rule.blocked


def _blocks(rule: Rule) -> bool:
    return rule.action is None or rule.action.upper() == "BLOCK"


def evaluate(feed: RuleFeed, facts: CallFacts, now: datetime) -> Outcome:
    """The rules' verdict on one call (pure: the same inputs give the same outcome)."""
    subjects = _Subjects(facts)
    blocking: Rule | None = None
    warnings: list[Rule] = []
    for compiled in feed.index.candidates(subjects):
        rule = compiled.rule
        if _expired(rule, now) or not _tripped(rule, facts) or not compiled.applies(subjects):
            continue
        if _blocks(rule):
            if blocking is None:
                blocking = rule
        else:
            warnings.append(rule)
    if (
        blocking is None
        and facts.subscriber_email
        and (feed.department_blocks or feed.department_candidates or feed.department_warnings)
    ):
        blocking = _department(feed, subjects, now, warnings)
    if blocking is None and not warnings:
        return ALLOW
    return Outcome(blocking, tuple(warnings))


def _department(
    feed: RuleFeed, subjects: _Subjects, now: datetime, warnings: list[Rule]
) -> Rule | None:
    """Department budgets: the server names, per subscriber email, the rules that block."""
    email = normalize_email(subjects.facts.subscriber_email or "")
    found: list[tuple[RuleId, str]] = []
    if email in feed.department_blocks:
        found.append((feed.department_blocks[email], "BLOCK"))
    found.extend(
        (c.rule_id, (c.tier or "BLOCK").upper())
        for c in feed.department_candidates.get(email, ())
        if c.rule_id is not None
    )
    if email in feed.department_warnings:
        found.append((feed.department_warnings[email], "WARN"))
    for rule_id, tier in found:
        compiled = feed.index.by_id.get(str(rule_id))
        if compiled is None:  # named by the map only: it blocks, unconditionally
            compiled = _Compiled(-1, Rule(rule_id=rule_id, breached=True), ())
        rule = compiled.rule
        if rule.shadow_mode or _expired(rule, now) or not compiled.applies(subjects):
            continue
        if tier == "BLOCK" and _blocks(rule):
            return rule
        warnings.append(rule)
    return None
