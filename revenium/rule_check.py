"""The pre-call check: does a rule of the feed block (or warn about) this call? Pure and fast.

:func:`evaluate` reads an immutable :class:`~revenium.rules.RuleFeed` and a call's
:class:`CallFacts`; it has no I/O and no state. It runs before every metered call when cost
controls are on, so each feed is compiled once (:class:`RuleIndex`): filter values are
normalized up front, and each rule is filed under its most selective ``IS``/``IN`` value, so a
call evaluates only the rules that can apply to it (``docs/benchmarks.md``, figure 11).

Matching (``docs/cost-controls.md`` has the table): every filter of a rule must match;
comparisons ignore case; a call with no value for a dimension matches only ``IS_NOT``; a
filter this version cannot evaluate keeps the rule in force (failing safe for the budget
owner); a rule past its ``windowEnd``, or in ``shadowMode``, never blocks; only ``BLOCK`` (or
no action) blocks, other actions warn.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final

import attrs

from revenium.rules import Filter, GroupEntry, Rule, RuleFeed, RuleId, normalize_email

__all__ = ["CallFacts", "Outcome", "RuleIndex", "evaluate", "model_family", "own_entry"]


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
    # ``model`` may be a deployment's name (Azure, no alias): model filters cannot be judged
    model_uncertain: bool = False


@attrs.frozen
class Outcome:
    """What the rules say about a call.

    ``blocking`` is the first rule (in the feed's order) that blocks it; ``warnings`` are the
    tripped rules whose action only warns; ``shadowed`` are shadow-mode rules that *would*
    block it, so a budget owner trying a rule out can see what it would do.
    """

    blocking: Rule | None = None
    warnings: tuple[Rule, ...] = ()
    shadowed: tuple[Rule, ...] = ()


ALLOW: Final = Outcome()

# A snapshot date (-2024-08-06, -20241022, OpenAI's -0613) or the -latest alias.
_DATED: Final = re.compile(r"(?:-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-latest)$")


@functools.lru_cache(maxsize=4096)  # a process calls few models: normalize each once
def model_family(model: str) -> str:
    """A model name without its snapshot date or ``-latest`` alias (and ``maker/`` prefix).

    ``gpt-4o-2024-08-06`` and ``gpt-4o-latest`` are ``gpt-4o``, ``gpt-4-0613`` is ``gpt-4``;
    ``gpt-4o-mini`` stays itself, so a ``gpt-4o`` rule never catches the smaller model.
    """
    name = model.strip().lower().rsplit("/", 1)[-1].split("@", 1)[0]
    return _DATED.sub("", name)


# The call's provider label also counts as the provider it stands for.
_PROVIDER_ALIASES: Final = {
    "FOUNDRY": "ANTHROPIC",
    "CLAUDECODE": "ANTHROPIC",
    "CLAUDECOWORK": "ANTHROPIC",
    "CODEXCLI": "OPENAI",
    "GEMINICLI": "GOOGLE",
}


def _model_key(name: str) -> str:
    """A rule's model: its family (``gpt-4o``), or one snapshot exactly when it names one."""
    exact = name.strip().lower().rsplit("/", 1)[-1]
    family = model_family(name)
    return family if family == exact else "=" + exact


def _normal(dimension: str, value: str) -> str:
    """How a value compares: a model by its family, an email trimmed, everything without case."""
    if dimension == "MODEL":
        return _model_key(value)
    if dimension == "SUBSCRIBER":
        return normalize_email(value)
    if dimension == "PROVIDER":
        return value.strip().upper()
    return value.strip().casefold()


def _subjects(dimension: str, facts: CallFacts) -> tuple[str, ...]:
    """The call's normalized value(s) for a dimension (empty: the call has none)."""
    raw: tuple[str | None, ...]
    if dimension == "MODEL":  # the family (for family rules) and the exact snapshot
        if not facts.model:
            return ()
        return (model_family(facts.model), "=" + facts.model.strip().lower().rsplit("/", 1)[-1])
    if dimension == "PROVIDER":
        label = facts.provider.strip().upper() if facts.provider else None
        raw = (label, _PROVIDER_ALIASES.get(label or ""))
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
    else:  # CREDENTIAL
        raw = (facts.credential_name, facts.credential_value)
    return tuple(_normal(dimension, v) for v in raw if v)


_TEXT_TESTS: Final[Mapping[str, Callable[[str, str], bool]]] = {
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
        # a rule's provider is the label it names (no alias: FOUNDRY means Foundry only)
        wanted = frozenset(_normal(dimension, v) for v in values)
        text = tuple(v.lower() for v in values) if dimension == "MODEL" else tuple(wanted)
        return cls(dimension, "IS" if operator == "IN" else operator, wanted, text)

    def matches(self, subjects: _Subjects) -> bool:
        if self.dimension == "MODEL" and subjects.facts.model_uncertain:
            return True  # a deployment's name: the rule stays in force
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


_NO_GROUPS: Final[Mapping[str, GroupEntry]] = MappingProxyType({})


@attrs.frozen(eq=False)  # identity: compared and hashed by object, never field by field
class _Compiled:
    position: int
    rule: Rule
    tests: tuple[_Condition, ...]
    # a grouped rule's entries by normalized group value, built once (not per call)
    groups: Mapping[str, GroupEntry] = attrs.field(factory=lambda: _NO_GROUPS)

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
    that can never block, warn or report (department rules, pooled rules within budget) are
    left out.
    """

    buckets: Mapping[tuple[str, str], tuple[_Compiled, ...]]
    dimensions: tuple[str, ...]  # the dimensions some bucket is keyed by
    anywhere: tuple[_Compiled, ...]
    by_id: Mapping[str, _Compiled]
    by_model: tuple[_Compiled, ...]  # every rule filed under a model (for deployment names)

    @classmethod
    def build(cls, rules: tuple[Rule, ...]) -> RuleIndex:
        compiled: list[_Compiled] = []
        by_id: dict[str, _Compiled] = {}
        for position, rule in enumerate(rules):
            tests = tuple(t for f in rule.filters if (t := _Condition.compile(f)) is not None)
            entry = _Compiled(position, rule, tests, _group_index(rule))
            if rule.rule_id is not None:
                by_id.setdefault(str(rule.rule_id), entry)
            grouped = bool(rule.group_breakdown or rule.group_by)
            if not rule.is_department_rule and (grouped or rule.breached or rule.blocked):
                compiled.append(entry)  # (a pooled rule within budget can do nothing)
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
            by_model=tuple(
                dict.fromkeys(e for (dim, _), es in buckets.items() if dim == "MODEL" for e in es)
            ),
        )

    def candidates(self, subjects: _Subjects) -> tuple[_Compiled, ...]:
        """The rules that may apply to this call, in the feed's order."""
        found: list[_Compiled] = []
        uncertain = subjects.facts.model_uncertain
        for dimension in self.dimensions:
            if uncertain and dimension == "MODEL":
                found.extend(self.by_model)  # any model rule may be this deployment's
                continue
            for value in subjects.of(dimension):
                found.extend(self.buckets.get((dimension, value), ()))
        if not found:
            return self.anywhere
        found.extend(self.anywhere)
        unique = {c.position: c for c in found}  # a rule filed under several of the values
        return tuple(unique[p] for p in sorted(unique))


class _Subjects:
    """A call's values per dimension, normalized once per check (and only when asked)."""

    __slots__ = ("_cache", "credentials", "facts", "model_text")

    def __init__(self, facts: CallFacts) -> None:
        self.facts = facts
        self.model_text = (facts.model.lower(),) if facts.model else ()
        self.credentials = {facts.credential_name, facts.credential_value} - {None}
        self._cache: dict[str, tuple[str, ...]] = {}

    def of(self, dimension: str) -> tuple[str, ...]:
        found = self._cache.get(dimension)
        if found is None:
            found = self._cache[dimension] = _subjects(dimension, self.facts)
        return found


def _expired(rule: Rule, now: datetime) -> bool:
    return rule.window_end is not None and rule.window_end <= now


# What a grouped rule's ``groupValue`` holds, by ``groupBy``: the caller's keys, in order.
_GROUP_KEYS: Final[Mapping[str, Callable[[CallFacts], tuple[str | None, ...]]]] = {
    "CREDENTIAL": lambda f: (f.credential_name, f.credential_value),
    "ORGANIZATION": lambda f: (f.organization,),
    "PRODUCT": lambda f: (f.product,),
    "AGENT": lambda f: (f.agent,),
    "TASK_TYPE": lambda f: (f.task_type,),
    "MODEL": lambda f: (model_family(f.model) if f.model else None,),
    "PROVIDER": lambda f: (f.provider,),
}


def _group_key(rule: Rule, value: str) -> str:
    if (rule.group_by or "").upper() == "MODEL":
        return model_family(value)  # a model's group is its family, as records name it
    return value.strip().casefold()


def _group_index(rule: Rule) -> Mapping[str, GroupEntry]:
    return {_group_key(rule, e.group_value): e for e in rule.group_breakdown if e.group_value}


def own_entry(
    rule: Rule, facts: CallFacts, groups: Mapping[str, GroupEntry] | None = None
) -> GroupEntry | None:
    """A grouped rule's entry for this caller: by subscriber id, then normalized and raw email
    (or by the value of the dimension the rule is grouped by)."""
    keys_of = _GROUP_KEYS.get((rule.group_by or "").upper())
    if keys_of is not None:
        keys = [k for k in keys_of(facts) if k]
    else:
        keys = [facts.subscriber_id or ""]
        if facts.subscriber_email:
            keys += [normalize_email(facts.subscriber_email), facts.subscriber_email.strip()]
    entries = _group_index(rule) if groups is None else groups
    return next(
        (entries[k] for key in keys if key and (k := _group_key(rule, key)) in entries), None
    )


def _tripped(compiled: _Compiled, facts: CallFacts) -> bool:
    rule = compiled.rule
    if rule.group_breakdown or rule.group_by:
        entry = own_entry(rule, facts, compiled.groups)
        return entry is not None and entry.breached
    return rule.breached or rule.blocked


def _blocks(rule: Rule) -> bool:
    return rule.action is None or rule.action.upper() == "BLOCK"


def evaluate(feed: RuleFeed, facts: CallFacts, now: datetime) -> Outcome:
    """The rules' verdict on one call (pure: the same inputs give the same outcome)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    subjects = _Subjects(facts)
    blocking: Rule | None = None
    warnings: list[Rule] = []
    shadowed: list[Rule] = []
    index: RuleIndex = feed.index
    for compiled in index.candidates(subjects):
        rule = compiled.rule
        if _expired(rule, now) or not _tripped(compiled, facts) or not compiled.applies(subjects):
            continue
        if rule.shadow_mode:  # observed, never enforced
            shadowed.append(rule)
        elif not _blocks(rule):
            warnings.append(rule)
        elif blocking is None:
            blocking = rule
    if blocking is None and facts.subscriber_email and not feed.no_departments:
        blocking = _department(feed, subjects, now, warnings)
    if blocking is None and not warnings and not shadowed:
        return ALLOW
    return Outcome(blocking, tuple(warnings), tuple(shadowed))


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
    index: RuleIndex = feed.index
    for rule_id, tier in found:
        compiled = index.by_id.get(str(rule_id))
        if compiled is None:  # named by the map only: it blocks, unconditionally
            compiled = _Compiled(-1, Rule(rule_id=rule_id, breached=True), ())
        rule = compiled.rule
        if rule.shadow_mode or _expired(rule, now) or not compiled.applies(subjects):
            continue
        if tier == "BLOCK" and _blocks(rule):
            return rule
        warnings.append(rule)
    return None
