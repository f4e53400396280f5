"""Cost-control rules as a budget owner sees them: the feed parsed, and each call matched.

:mod:`revenium.rules` is pure, so every test here hands ``evaluate`` an explicit ``now`` and
asserts on the :class:`Outcome`: the rule that blocks the call, and the rules that only warn.
The feed shapes follow the study (section 1.8) and issue 7, which decides where they differ.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revenium.rule_check import CallFacts, Outcome, evaluate, model_family
from revenium.rules import (
    Candidate,
    Filter,
    GroupEntry,
    MalformedFeedError,
    Rule,
    RuleFeed,
    parse_feed,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
PAST = "2026-11-26T23:59:59.999999999Z"
FUTURE = "2026-11-30T23:59:59.999999999Z"

# A call carrying a value for every dimension a filter can name.
CALL = CallFacts(
    model="gpt-4o-2024-08-06",
    provider="openai",
    agent="support-bot",
    task_type="summarize",
    product="chatbot",
    organization="AcmeCorp",
    subscriber_id="u-17",
    subscriber_email="Ada@Acme.com",
    credential_name="eng-key",
    credential_value="sk-live-123",
)


def rule(**fields: Any) -> dict[str, Any]:
    """A breached pooled rule as the feed sends it, with the given fields added or replaced."""
    return {"ruleId": 1, "name": "Monthly cap", "breached": True, **fields}


def feed_of(*rules: dict[str, Any], **sections: Any) -> RuleFeed:
    return parse_feed({"rules": list(rules), **sections})


def check(feed: RuleFeed, facts: CallFacts = CALL, now: datetime = NOW) -> Outcome:
    return evaluate(feed, facts, now)


def blocks(feed: RuleFeed, facts: CallFacts = CALL, now: datetime = NOW) -> bool:
    return check(feed, facts, now).blocking is not None


def filtered(dimension: str, operator: str, wanted: str | list[str]) -> RuleFeed:
    """One breached BLOCK rule with a single filter (a list goes in ``values``)."""
    key = "values" if isinstance(wanted, list) else "value"
    flt = {"dimension": dimension, "operator": operator, key: wanted}
    return feed_of(rule(action="BLOCK", filters=[flt]))


def problems_of(body: object) -> list[str]:
    with pytest.raises(MalformedFeedError) as caught:
        parse_feed(body)
    return caught.value.problems


# --- parsing: well-formed feeds --------------------------------------------------------------

STUDY_RULE = {
    "ruleId": 42,
    "name": "Monthly GPT cap",
    "action": "BLOCK",
    "shadowMode": False,
    "breached": True,
    "currentValue": 512.3,
    "threshold": 500.0,
    "resetsAt": "2026-12-01T00:00:00Z",
    "windowEnd": "2026-11-30T23:59:59.999999999Z",
    "denyMessage": "Ask finance",
    "groupBy": "SUBSCRIBER",
    "groupBreakdown": [{"groupValue": "u1@x.com", "breached": True, "currentValue": 80.0}],
    "filters": [{"dimension": "MODEL", "operator": "IN", "values": ["gpt-4o"], "value": "gpt-4o"}],
    "departmentId": None,
    "source": None,
    "credential": None,
}
FULL_FEED = {
    "rules": [
        STUDY_RULE,
        {
            "ruleId": "r-7",
            "name": "Support agent",
            "action": "WARN_ONLY",
            "breached": True,
            "threshold": 50,
            "filters": [{"dimension": "AGENT", "operator": "IS", "value": "support-bot"}],
        },
        {"ruleId": 900, "name": "Engineering", "departmentId": 5, "action": "BLOCK"},
    ],
    "compiledAt": "2026-11-27T11:59:00Z",
    "departmentBudgetBlocks": {" Ada@Acme.COM ": 900},
    "departmentBudgetBlockBalances": {"ADA@acme.com": -12.5},
    "departmentBudgetWarnings": {"Bob@Acme.com": "900"},
    "departmentBudgetCandidates": {
        "Carol@Acme.com ": [{"ruleId": 900, "tier": "BLOCK", "departmentId": 5, "balance": 3.5}]
    },
}


def test_full_feed_as_the_study_shows_it() -> None:
    feed = parse_feed(FULL_FEED)

    study, support, department = feed.rules
    assert study == Rule(
        rule_id=42,
        name="Monthly GPT cap",
        action="BLOCK",
        shadow_mode=False,
        breached=True,
        current_value=512.3,
        threshold=500.0,
        resets_at="2026-12-01T00:00:00Z",  # passed through unparsed: expiry is windowEnd's job
        window_end=datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC),
        deny_message="Ask finance",
        group_by="SUBSCRIBER",
        group_breakdown=(GroupEntry(group_value="u1@x.com", breached=True, current_value=80.0),),
        filters=(Filter(dimension="MODEL", operator="IN", value="gpt-4o", values=("gpt-4o",)),),
    )
    assert support.rule_id == "r-7"
    assert support.threshold == 50.0
    assert support.filters == (Filter(dimension="AGENT", operator="IS", value="support-bot"),)
    assert department.department_id == 5
    assert department.is_department_rule
    assert feed.compiled_at == "2026-11-27T11:59:00Z"
    # Department maps are keyed by email trimmed and lower-cased.
    assert dict(feed.department_blocks) == {"ada@acme.com": 900}
    assert dict(feed.department_block_balances) == {"ada@acme.com": -12.5}
    assert dict(feed.department_warnings) == {"bob@acme.com": "900"}
    assert dict(feed.department_candidates) == {
        "carol@acme.com": (Candidate(rule_id=900, tier="BLOCK", department_id=5, balance=3.5),)
    }


def test_a_bare_list_is_the_rules_alone() -> None:
    feed = parse_feed([STUDY_RULE, {"ruleId": "r-7", "breached": True}])

    assert [r.rule_id for r in feed.rules] == [42, "r-7"]
    assert not feed.department_blocks


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        {"rules": []},
        {
            "rules": None,
            "compiledAt": None,
            "departmentBudgetBlocks": None,
            "departmentBudgetBlockBalances": None,
            "departmentBudgetWarnings": None,
            "departmentBudgetCandidates": None,
        },
        {"orgUnitBudgetBlocks": None, "orgUnitBudgetCandidates": None},
    ],
    ids=["empty-object", "empty-list", "no-rules", "null-sections", "null-legacy-sections"],
)
def test_empty_feeds_allow_everything(body: object) -> None:
    feed = parse_feed(body)

    assert feed.rules == ()
    assert not feed.department_blocks
    assert not feed.department_warnings
    assert not feed.department_candidates
    assert feed.inert
    assert check(feed) == Outcome()


def test_legacy_org_unit_keys_are_read_as_department_keys() -> None:
    feed = parse_feed(
        {
            "rules": [{"ruleId": 900, "orgUnitId": 5, "action": "BLOCK"}],
            "orgUnitBudgetBlocks": {"Ada@Acme.com": 900},
            "orgUnitBudgetBlockBalances": {"Ada@Acme.com": 0},
            "orgUnitBudgetWarnings": {"Bob@Acme.com": 900},
            "orgUnitBudgetCandidates": {"Carol@Acme.com": [{"ruleId": 900, "tier": "WARN"}]},
        }
    )

    assert feed.rules[0].is_department_rule
    assert dict(feed.department_blocks) == {"ada@acme.com": 900}
    assert dict(feed.department_block_balances) == {"ada@acme.com": 0.0}
    assert dict(feed.department_warnings) == {"bob@acme.com": 900}
    assert dict(feed.department_candidates) == {"carol@acme.com": (Candidate(900, "WARN"),)}
    assert check(feed).blocking == feed.rules[0]


def test_unknown_keys_are_ignored_at_every_level() -> None:
    feed = parse_feed(
        {
            "rules": [
                rule(
                    futureField={"nested": [1, 2]},
                    filters=[{"dimension": "AGENT", "value": "support-bot", "weight": 3}],
                    groupBy="SUBSCRIBER",
                    groupBreakdown=[{"groupValue": "u-17", "breached": True, "rank": 1}],
                )
            ],
            "departmentBudgetCandidates": {"x@y.z": [{"ruleId": 1, "tier": "WARN", "why": "x"}]},
            "apiVersion": 3,
            "_links": {"self": "/v2/api/ai/enforcement-rules/team"},
        }
    )

    assert feed.rules[0].filters == (Filter(dimension="AGENT", value="support-bot"),)
    assert feed.rules[0].group_breakdown == (GroupEntry(group_value="u-17", breached=True),)
    assert blocks(feed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-30T23:59:59.999999999Z", datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2026-11-30T23:59:59Z", datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)),
        ("2026-11-30T23:59:59.5Z", datetime(2026, 11, 30, 23, 59, 59, 500000, tzinfo=UTC)),
        (
            "2026-12-01T01:59:59.123456789+02:00",
            datetime(2026, 11, 30, 23, 59, 59, 123456, tzinfo=UTC),
        ),
        ("2026-11-30T23:59:59", datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)),  # naive: UTC
    ],
)
def test_window_end_instants(text: str, expected: datetime) -> None:
    (parsed,) = feed_of(rule(windowEnd=text)).rules

    assert parsed.window_end == expected


def test_numbers_sent_as_text_and_numeric_text_fields() -> None:
    (parsed,) = feed_of(
        rule(
            threshold="500.25",
            currentValue="512",
            name=7,
            filters=[{"dimension": "ORGANIZATION", "value": 1234}],
        )
    ).rules

    assert parsed.threshold == 500.25
    assert parsed.current_value == 512.0
    assert parsed.name == "7"
    assert parsed.filters[0].value == "1234"


# --- parsing: malformed feeds are rejected whole ----------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"rules": [rule(threshold="lots")]}, "$.rules[0].threshold"),
        ({"rules": [rule(currentValue=[1])]}, "$.rules[0].currentValue"),
        ({"rules": [rule(shadowMode="no")]}, "$.rules[0].shadowMode"),
        ({"rules": [rule(breached=1)]}, "$.rules[0].breached"),
        ({"rules": [rule(ruleId=[1])]}, "$.rules[0].ruleId"),
        ({"rules": [rule(ruleId={"id": 1})]}, "$.rules[0].ruleId"),
        ({"rules": [rule(filters=3)]}, "$.rules[0].filters"),
        ({"rules": [rule(windowEnd="end of month")]}, "$.rules[0].windowEnd"),
        ({"rules": [rule(windowEnd=1764547199)]}, "$.rules[0].windowEnd"),
        ({"rules": [rule(windowEnd="2026-13-45T99:00:00Z")]}, "$.rules[0].windowEnd"),
        ({"rules": [rule(groupBreakdown=4)]}, "$.rules[0].groupBreakdown"),
        (
            {"rules": [rule(groupBreakdown=[{"groupValue": "u", "breached": "yes"}])]},
            "$.rules[0].groupBreakdown[0].breached",
        ),
        ({"rules": [rule(filters=[{"operator": "IS"}])]}, "$.rules[0].filters[0].dimension"),
        (
            {"rules": [rule(filters=[{"dimension": "MODEL", "value": ["gpt-4o"]}])]},
            "$.rules[0].filters[0].value",
        ),
        ({"rules": [rule(), rule(denyMessage={"text": "no"})]}, "$.rules[1].denyMessage"),
        ({"rules": 5}, "$.rules"),
        ({"departmentBudgetBlocks": 3}, "$.departmentBudgetBlocks"),
        ({"departmentBudgetBlockBalances": {"a@b.c": "lots"}}, "$.departmentBudgetBlockBalances"),
        (
            {"departmentBudgetCandidates": {"a@b.c": [{"ruleId": [9]}]}},
            "$.departmentBudgetCandidates",
        ),
    ],
)
def test_a_wrong_field_rejects_the_feed_naming_its_path(body: object, path: str) -> None:
    problems = problems_of(body)

    assert any(path in problem for problem in problems), problems


def test_every_wrong_field_is_named_in_camel_case() -> None:
    with pytest.raises(MalformedFeedError) as caught:
        parse_feed({"rules": [rule(), rule(threshold="lots", shadowMode="no", windowEnd="soon")]})

    text = str(caught.value)
    for path in ("$.rules[1].threshold", "$.rules[1].shadowMode", "$.rules[1].windowEnd"):
        assert any(path in problem for problem in caught.value.problems)
        assert path in text
    assert "shadow_mode" not in text
    assert "window_end" not in text
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("body", ["rules", 3, 2.5, True, None, b"{}"])
def test_a_body_that_is_not_an_object_or_a_list_is_rejected(body: object) -> None:
    (problem,) = problems_of(body)

    assert type(body).__name__ in problem


def test_filter_values_as_a_string_is_rejected() -> None:
    # values: "gpt-4o" becomes ('g', 'p', 't', '-', '4', 'o'): the IN rule then matches nothing
    # and the budget owner's gpt-4o cap silently stops applying.
    body = {"rules": [rule(filters=[{"dimension": "MODEL", "operator": "IN", "values": "gpt-4o"}])]}

    assert any("$.rules[0].filters[0].values" in p for p in problems_of(body))


@pytest.mark.parametrize("rules", ["", "{}", {}], ids=["empty-string", "text", "object"])
def test_rules_that_are_not_a_list_are_rejected(rules: object) -> None:
    # Accepting these replaces the last good rules with none (the poller keeps the last good
    # rules only for a rejected feed).
    assert any("$.rules" in p for p in problems_of({"rules": rules}))


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"rules": ["oops"]}, "$.rules[0]"),
        ({"rules": [[1, 2]]}, "$.rules[0]"),
        ({"rules": [rule(groupBreakdown=["u-17"])]}, "$.rules[0].groupBreakdown[0]"),
        ({"departmentBudgetCandidates": {"a@b.c": ["x"]}}, "$.departmentBudgetCandidates"),
    ],
    ids=["rule-text", "rule-list", "group-entry-text", "candidate-text"],
)
def test_a_non_object_where_an_object_is_expected_is_rejected(body: object, path: str) -> None:
    # cattrs tests `"ruleId" in o` on whatever it is given: text without a field name in it,
    # or a list, structures as an object with every field at its default.
    assert any(path in p for p in problems_of(body))


@pytest.mark.parametrize(
    "fields",
    [
        {"filters": None},
        {"groupBreakdown": None, "groupBy": None},
        {"filters": [{"dimension": "MODEL", "operator": "IS", "value": "gpt-4o", "values": None}]},
    ],
    ids=["filters", "groupBreakdown", "values"],
)
def test_null_lists_inside_a_rule_are_absent(fields: dict[str, Any]) -> None:
    # The server sends null for fields it has no value for (the study's example rule has
    # "departmentId": null, "credential": null); a pooled rule with "groupBreakdown": null is
    # still a pooled rule.
    feed = feed_of(rule(**fields))

    assert blocks(feed)


def test_a_wrong_legacy_section_is_named_as_the_feed_spells_it() -> None:
    problems = problems_of({"orgUnitBudgetBlocks": 3})

    assert any("$.orgUnitBudgetBlocks" in p for p in problems), problems


# --- matching: every dimension and operator ---------------------------------------------------

_OTHER = "zz-other"


def _text_dimension(dimension: str, value: str) -> list[tuple[str, str, str | list[str], bool]]:
    """The six operators, matching and not, for a dimension compared as plain text."""
    return [
        (dimension, "IS", value, True),
        (dimension, "IS", _OTHER, False),
        (dimension, "IS_NOT", _OTHER, True),
        (dimension, "IS_NOT", value, False),
        (dimension, "CONTAINS", value[1:-1], True),
        (dimension, "CONTAINS", _OTHER, False),
        (dimension, "STARTS_WITH", value[:3], True),
        (dimension, "STARTS_WITH", value[1:], False),
        (dimension, "ENDS_WITH", value[-3:], True),
        (dimension, "ENDS_WITH", value[:-1], False),
        (dimension, "IN", [_OTHER, value], True),
        (dimension, "IN", [_OTHER], False),
    ]


MATCHING = [
    *_text_dimension("AGENT", "support-bot"),
    *_text_dimension("TASK_TYPE", "summarize"),
    *_text_dimension("PRODUCT", "chatbot"),
    *_text_dimension("ORGANIZATION", "AcmeCorp"),
    # MODEL: IS and IN compare model families; the text operators read the name itself.
    ("MODEL", "IS", "gpt-4o", True),
    ("MODEL", "IS", "gpt-4o-2024-08-06", True),
    ("MODEL", "IS", "gpt-4o-mini", False),
    ("MODEL", "IS_NOT", "gpt-4o-mini", True),
    ("MODEL", "IS_NOT", "gpt-4o", False),
    ("MODEL", "CONTAINS", "4o", True),
    ("MODEL", "CONTAINS", "mini", False),
    ("MODEL", "STARTS_WITH", "gpt-4", True),
    ("MODEL", "STARTS_WITH", "claude", False),
    ("MODEL", "ENDS_WITH", "08-06", True),
    ("MODEL", "ENDS_WITH", "mini", False),
    ("MODEL", "IN", ["claude-sonnet-4-5", "gpt-4o"], True),
    ("MODEL", "IN", ["gpt-4o-mini", "o3"], False),
    # PROVIDER: case-insensitive.
    ("PROVIDER", "IS", "OPENAI", True),
    ("PROVIDER", "IS", "OpenAI", True),
    ("PROVIDER", "IS", "ANTHROPIC", False),
    ("PROVIDER", "IS_NOT", "ANTHROPIC", True),
    ("PROVIDER", "IS_NOT", "openai", False),
    ("PROVIDER", "CONTAINS", "Open", True),
    ("PROVIDER", "CONTAINS", "THROP", False),
    ("PROVIDER", "STARTS_WITH", "open", True),
    ("PROVIDER", "STARTS_WITH", "GOO", False),
    ("PROVIDER", "ENDS_WITH", "AI", True),
    ("PROVIDER", "ENDS_WITH", "PIC", False),
    ("PROVIDER", "IN", ["GOOGLE", "OPENAI"], True),
    ("PROVIDER", "IN", ["GOOGLE", "ANTHROPIC"], False),
    # SUBSCRIBER: the email (case-insensitive) or the id.
    ("SUBSCRIBER", "IS", "ada@acme.com", True),
    ("SUBSCRIBER", "IS", "ADA@ACME.COM", True),
    ("SUBSCRIBER", "IS", "u-17", True),
    ("SUBSCRIBER", "IS", "bob@acme.com", False),
    ("SUBSCRIBER", "IS_NOT", "bob@acme.com", True),
    ("SUBSCRIBER", "IS_NOT", "ada@acme.com", False),
    ("SUBSCRIBER", "IS_NOT", "u-17", False),
    ("SUBSCRIBER", "CONTAINS", "@ACME", True),
    ("SUBSCRIBER", "CONTAINS", "@globex", False),
    ("SUBSCRIBER", "STARTS_WITH", "ada@", True),
    ("SUBSCRIBER", "STARTS_WITH", "bob", False),
    ("SUBSCRIBER", "ENDS_WITH", "@Acme.COM", True),
    ("SUBSCRIBER", "ENDS_WITH", "@globex.com", False),
    ("SUBSCRIBER", "IN", ["bob@acme.com", "Ada@acme.com"], True),
    ("SUBSCRIBER", "IN", ["bob@acme.com", "u-18"], False),
    ("SUBSCRIBER", "IN", ["u-17"], True),
    # CREDENTIAL: the name or the value.
    ("CREDENTIAL", "IS", "eng-key", True),
    ("CREDENTIAL", "IS", "sk-live-123", True),
    ("CREDENTIAL", "IS", "ops-key", False),
    ("CREDENTIAL", "IS_NOT", "ops-key", True),
    ("CREDENTIAL", "IS_NOT", "eng-key", False),
    ("CREDENTIAL", "IS_NOT", "sk-live-123", False),
    ("CREDENTIAL", "CONTAINS", "live", True),
    ("CREDENTIAL", "CONTAINS", "test", False),
    ("CREDENTIAL", "STARTS_WITH", "sk-", True),
    ("CREDENTIAL", "STARTS_WITH", "ops", False),
    ("CREDENTIAL", "ENDS_WITH", "-key", True),
    ("CREDENTIAL", "ENDS_WITH", "-999", False),
    ("CREDENTIAL", "IN", ["ops-key", "eng-key"], True),
    ("CREDENTIAL", "IN", ["ops-key", "sk-test-1"], False),
]


@pytest.mark.parametrize(
    ("dimension", "operator", "wanted", "matches"),
    MATCHING,
    ids=[f"{d}-{o}-{w}" for d, o, w, _ in MATCHING],
)
def test_each_dimension_and_operator(
    dimension: str, operator: str, wanted: str | list[str], matches: bool
) -> None:
    assert blocks(filtered(dimension, operator, wanted)) is matches


@pytest.mark.parametrize(
    "facts",
    [
        CallFacts(subscriber_id="u-17"),
        CallFacts(subscriber_email=" ADA@acme.com "),
    ],
    ids=["id-only", "email-only"],
)
def test_subscriber_is_matched_by_email_or_by_id_alone(facts: CallFacts) -> None:
    assert blocks(filtered("SUBSCRIBER", "IN", ["ada@acme.com", "u-17"]), facts)
    assert not blocks(filtered("SUBSCRIBER", "IS_NOT", ["ada@acme.com", "u-17"]), facts)


DIMENSIONS = [
    "MODEL",
    "PROVIDER",
    "AGENT",
    "TASK_TYPE",
    "PRODUCT",
    "ORGANIZATION",
    "SUBSCRIBER",
    "CREDENTIAL",
]
NO_VALUE = [
    ("IS", "x", False),
    ("IS_NOT", "x", True),
    ("CONTAINS", "x", False),
    ("STARTS_WITH", "x", False),
    ("ENDS_WITH", "x", False),
    ("IN", ["x", "y"], False),
]


@pytest.mark.parametrize("dimension", DIMENSIONS)
@pytest.mark.parametrize(("operator", "wanted", "matches"), NO_VALUE)
@pytest.mark.parametrize("facts", [CallFacts(), CallFacts(*[""] * 10)], ids=["none", "empty"])
def test_a_call_with_no_value_for_the_dimension_matches_only_is_not(
    dimension: str, operator: str, wanted: str | list[str], matches: bool, facts: CallFacts
) -> None:
    assert blocks(filtered(dimension, operator, wanted), facts) is matches


@pytest.mark.parametrize(
    ("rule_model", "call_model", "matches"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-2024-08-06", True),
        ("gpt-4o", "gpt-4o-latest", True),
        ("gpt-4o", "openai/gpt-4o", True),
        ("gpt-4o", "GPT-4o", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("gpt-4o", "gpt-4o-mini-2024-07-18", False),
        ("gpt-4o", "gpt-4", False),
        ("gpt-4o", "gpt-4o-audio-preview", False),
        ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", True),
        ("gpt-4o-mini", "gpt-4o", False),
        ("claude-sonnet-4-5", "claude-sonnet-4-5", True),
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", True),
        ("claude-sonnet-4-5", "claude-sonnet-4-5@20250929", True),  # Vertex
        ("claude-sonnet-4-5", "anthropic/claude-sonnet-4-5", True),
        ("claude-sonnet-4-5", "claude-sonnet-4-20250514", False),
        ("claude-sonnet-4", "claude-sonnet-4-5-20250929", False),
        ("claude-3-5-sonnet-v2", "claude-3-5-sonnet-v2@20241022", True),
        ("claude-3-5-sonnet", "claude-3-5-sonnet-v2@20241022", False),
        ("claude-3-5-sonnet", "claude-3-5-sonnet-latest", True),
        pytest.param(
            "gpt-3.5-turbo",
            "gpt-3.5-turbo-0125",
            True,
        ),
        pytest.param(
            "gpt-4",
            "gpt-4-0613",
            True,
        ),
    ],
)
@pytest.mark.parametrize("operator", ["IS", "IN"])
def test_a_model_rule_covers_its_snapshots_never_a_sibling(
    rule_model: str, call_model: str, matches: bool, operator: str
) -> None:
    wanted = [rule_model] if operator == "IN" else rule_model
    feed = filtered("MODEL", operator, wanted)

    assert blocks(feed, CallFacts(model=call_model)) is matches
    negated = filtered("MODEL", "IS_NOT", rule_model)
    assert blocks(negated, CallFacts(model=call_model)) is not matches


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-latest", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("  GPT-4o  ", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("publishers/anthropic/models/claude-opus-4@20250514", "claude-opus-4"),
    ],
)
def test_model_family(model: str, family: str) -> None:
    assert model_family(model) == family


@pytest.mark.parametrize(
    ("call_provider", "rule_provider", "matches"),
    [
        ("anthropic", "ANTHROPIC", True),
        ("foundry", "ANTHROPIC", True),
        ("ClaudeCode", "anthropic", True),
        ("CLAUDECOWORK", "Anthropic", True),
        ("codexcli", "OPENAI", True),
        ("GeminiCLI", "GOOGLE", True),
        ("codexcli", "ANTHROPIC", False),
        ("geminicli", "OPENAI", False),
        ("foundry", "GOOGLE", False),
    ],
)
def test_provider_aliases(call_provider: str, rule_provider: str, matches: bool) -> None:
    call = CallFacts(provider=call_provider)

    assert blocks(filtered("PROVIDER", "IS", rule_provider), call) is matches
    assert blocks(filtered("PROVIDER", "IN", ["X", rule_provider]), call) is matches
    assert blocks(filtered("PROVIDER", "IS_NOT", rule_provider), call) is not matches


def test_lower_case_dimension_and_operator_names_are_read() -> None:
    assert blocks(filtered("model", "is", "gpt-4o"))
    assert not blocks(filtered("model", "is", "gpt-4o-mini"))


@pytest.mark.parametrize(
    ("facts", "matches"),
    [
        (CALL, True),
        (CallFacts(model="gpt-4o", agent="support-bot", provider="OPENAI"), True),
        (CallFacts(model="gpt-4o-mini", agent="support-bot", provider="openai"), False),
        (CallFacts(model="gpt-4o", agent="sales-bot", provider="openai"), False),
        (CallFacts(model="gpt-4o", agent="support-bot", provider="anthropic"), False),
        (CallFacts(model="gpt-4o", agent="support-bot"), False),
    ],
)
def test_every_filter_of_a_rule_must_match(facts: CallFacts, matches: bool) -> None:
    feed = feed_of(
        rule(
            filters=[
                {"dimension": "MODEL", "operator": "IS", "value": "gpt-4o"},
                {"dimension": "AGENT", "operator": "IS", "value": "support-bot"},
                {"dimension": "PROVIDER", "operator": "IN", "values": ["OPENAI", "GOOGLE"]},
            ]
        )
    )

    assert blocks(feed, facts) is matches


UNEVALUABLE = [
    {"dimension": "REGION", "operator": "IS", "value": "eu-west-1"},
    {"dimension": "MODEL", "operator": "MATCHES_REGEX", "value": "^o3"},
    {"dimension": "MODEL", "operator": "IS"},
    {"dimension": "MODEL", "operator": "IN", "values": []},
    {"dimension": "AGENT", "operator": "IS", "value": ""},
]


@pytest.mark.parametrize(
    "unevaluable",
    UNEVALUABLE,
    ids=["unknown-dimension", "unknown-operator", "no-value", "no-values", "empty-value"],
)
@pytest.mark.parametrize("facts", [CALL, CallFacts()], ids=["full-call", "empty-call"])
def test_a_filter_the_sdk_cannot_evaluate_keeps_the_rule_in_force(
    unevaluable: dict[str, Any], facts: CallFacts
) -> None:
    assert blocks(feed_of(rule(filters=[unevaluable])), facts)
    # It does not override a filter that does not match.
    mismatch = {"dimension": "MODEL", "operator": "IS", "value": "o3"}
    assert not blocks(feed_of(rule(filters=[unevaluable, mismatch])), facts)


@pytest.mark.parametrize(
    ("facts", "matches"),
    [
        (CallFacts(credential_name="eng-key"), True),
        (CallFacts(credential_value="eng-key"), True),
        (CallFacts(credential_name="ops-key", credential_value="eng-key"), True),
        (CallFacts(credential_name="ops-key", credential_value="sk-1"), False),
        (CallFacts(model="gpt-4o"), False),
    ],
)
def test_the_legacy_rule_level_credential(facts: CallFacts, matches: bool) -> None:
    assert blocks(feed_of(rule(credential="eng-key")), facts) is matches


# --- tripping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "tripped"),
    [
        ({"breached": True}, True),
        ({"breached": False}, False),
        ({"breached": False, "blocked": True}, True),  # the older name of breached
        ({"blocked": False}, False),
        ({}, False),
    ],
)
def test_a_pooled_rule_trips_when_breached(fields: dict[str, Any], tripped: bool) -> None:
    feed = parse_feed({"rules": [{"ruleId": 1, "action": "BLOCK", **fields}]})

    assert blocks(feed) is tripped
    assert blocks(feed, CallFacts()) is tripped  # a pooled rule trips for every caller


GROUPED = rule(
    breached=True,  # the pool as a whole: not what decides a grouped rule
    groupBy="SUBSCRIBER",
    groupBreakdown=[
        {"groupValue": "u-17", "breached": True, "currentValue": 80.0},
        {"groupValue": "bob@acme.com", "breached": False, "currentValue": 2.0},
        {"groupValue": "carol@acme.com", "breached": True},
        {"groupValue": "Dave@Acme.com", "breached": True},
        {"groupValue": "u-9", "breached": False},
        {"groupValue": "eve@acme.com", "breached": True},
    ],
)


@pytest.mark.parametrize(
    ("facts", "tripped"),
    [
        (CallFacts(subscriber_id="u-17"), True),
        (CallFacts(subscriber_id="u-17", subscriber_email="bob@acme.com"), True),  # id first
        (CallFacts(subscriber_email="bob@acme.com"), False),
        (CallFacts(subscriber_email=" Carol@ACME.com "), True),  # normalized email
        (CallFacts(subscriber_email="Dave@Acme.com"), True),  # raw email
        (CallFacts(subscriber_id="u-9", subscriber_email="eve@acme.com"), False),  # id first
        (CallFacts(subscriber_id="u-404", subscriber_email="eve@acme.com"), True),
        (CallFacts(subscriber_id="u-404", subscriber_email="mallory@acme.com"), False),
        (CallFacts(model="gpt-4o"), False),  # no subscriber: no entry of its own
    ],
)
def test_a_grouped_rule_is_decided_by_the_callers_own_entry(
    facts: CallFacts, tripped: bool
) -> None:
    feed = feed_of(GROUPED)

    assert blocks(feed, facts) is tripped


def test_another_subscribers_breach_does_not_block() -> None:
    feed = feed_of(
        rule(
            groupBy="SUBSCRIBER", groupBreakdown=[{"groupValue": "bob@acme.com", "breached": True}]
        )
    )

    assert blocks(feed, CallFacts(subscriber_email="bob@acme.com"))
    assert not blocks(feed, CallFacts(subscriber_email="ada@acme.com"))


@pytest.mark.parametrize(
    "fields",
    [
        {"groupBy": "SUBSCRIBER"},
        {"groupBy": "SUBSCRIBER", "groupBreakdown": []},
        {"groupBy": "SUBSCRIBER", "blocked": True},
    ],
)
def test_a_grouped_rule_with_an_empty_breakdown_blocks_nobody(fields: dict[str, Any]) -> None:
    feed = feed_of(rule(breached=True, **fields))

    assert not blocks(feed)
    assert not blocks(feed, CallFacts())


def test_a_breakdown_without_group_by_is_still_grouped() -> None:
    feed = feed_of(rule(groupBreakdown=[{"groupValue": "bob@acme.com", "breached": True}]))

    assert not blocks(feed)
    assert blocks(feed, CallFacts(subscriber_email="BOB@acme.com"))


@pytest.mark.parametrize(
    ("window_end", "now", "in_force"),
    [
        (FUTURE, NOW, True),
        (PAST, NOW, False),
        ("2026-11-27T12:00:01Z", NOW, True),
        ("2026-11-27T11:59:59Z", NOW, False),
        ("2026-11-27T13:30:00+02:00", NOW, False),  # 11:30 UTC
        (FUTURE, datetime(2026, 12, 1, tzinfo=UTC), False),  # the same rule, later on
        (FUTURE, datetime(2026, 12, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))), True),
        (None, NOW, True),
    ],
)
def test_a_rule_past_its_window_end_never_blocks(
    window_end: str | None, now: datetime, in_force: bool
) -> None:
    pooled = feed_of(rule(windowEnd=window_end))
    grouped = feed_of(
        rule(
            windowEnd=window_end,
            groupBy="SUBSCRIBER",
            groupBreakdown=[{"groupValue": "u-17", "breached": True}],
        )
    )

    assert blocks(pooled, now=now) is in_force
    assert blocks(grouped, now=now) is in_force


@pytest.mark.parametrize("action", [None, "BLOCK", "WARN_ONLY"])
def test_a_shadow_mode_rule_never_blocks(action: str | None) -> None:
    feed = feed_of(
        rule(shadowMode=True, action=action),
        rule(
            ruleId=2,
            shadowMode=True,
            groupBy="SUBSCRIBER",
            groupBreakdown=[{"groupValue": "u-17", "breached": True}],
        ),
    )

    assert check(feed).blocking is None


@pytest.mark.parametrize(
    ("fields", "blocking", "warning"),
    [
        ({}, True, False),
        ({"action": None}, True, False),
        ({"action": "BLOCK"}, True, False),
        ({"action": "block"}, True, False),
        ({"action": "WARN_ONLY"}, False, True),
        ({"action": "THROTTLE"}, False, True),
        ({"action": "NOTIFY"}, False, True),
    ],
)
def test_only_block_or_no_action_blocks(
    fields: dict[str, Any], blocking: bool, warning: bool
) -> None:
    feed = parse_feed([{"ruleId": 1, "breached": True, **fields}])
    outcome = check(feed)

    assert (outcome.blocking is not None) is blocking
    assert (outcome.warnings == feed.rules) is warning
    assert outcome.blocking is None or outcome.blocking == feed.rules[0]


def test_an_untripped_warning_rule_says_nothing() -> None:
    feed = feed_of(rule(action="WARN_ONLY", breached=False))

    assert check(feed) == Outcome()


def test_the_first_blocking_rule_is_reported_with_every_warning() -> None:
    feed = feed_of(
        rule(ruleId=1, action="NOTIFY"),
        rule(ruleId=2, action="BLOCK", breached=False),
        rule(ruleId=3, action="BLOCK", name="First", denyMessage="Ask finance", threshold=500),
        rule(ruleId=4, action=None, name="Second"),
        rule(ruleId=5, action="WARN_ONLY"),
        rule(ruleId=6, action="THROTTLE", filters=[{"dimension": "MODEL", "value": "o3"}]),
    )
    outcome = check(feed)

    assert outcome.blocking is not None
    assert outcome.blocking.rule_id == 3
    assert outcome.blocking.name == "First"
    assert outcome.blocking.deny_message == "Ask finance"
    assert outcome.blocking.threshold == 500.0
    assert [r.rule_id for r in outcome.warnings] == [1, 5]


def test_evaluate_is_pure() -> None:
    feed = parse_feed(FULL_FEED)

    assert check(feed) == check(feed)
    assert parse_feed(FULL_FEED) == feed


# --- department budgets -----------------------------------------------------------------------

DEPT_RULES = [
    {"ruleId": 900, "name": "Engineering", "departmentId": 5, "action": "BLOCK"},
    {
        "ruleId": 901,
        "name": "Eng Claude",
        "orgUnitId": 5,
        "filters": [{"dimension": "MODEL", "operator": "IS", "value": "claude-sonnet-4-5"}],
    },
    {"ruleId": 902, "name": "Design", "groupBy": "DEPARTMENT", "action": "WARN_ONLY"},
    {"ruleId": 903, "name": "Shadow", "departmentId": 6, "shadowMode": True},
    {"ruleId": 904, "name": "Last month", "departmentId": 7, "windowEnd": PAST},
    {"ruleId": 905, "name": "Research", "groupBy": "ORG_UNIT", "breached": True},
]


def department_feed(**sections: Any) -> RuleFeed:
    return parse_feed({"rules": DEPT_RULES, **sections})


@pytest.mark.parametrize(
    ("email", "blocked_by"),
    [
        ("ada@acme.com", 900),
        ("Ada@Acme.com", 900),
        ("  ADA@ACME.COM\t", 900),
        ("bob@acme.com", None),
        (None, None),
    ],
)
def test_department_blocks_by_normalized_subscriber_email(
    email: str | None, blocked_by: int | None
) -> None:
    feed = department_feed(departmentBudgetBlocks={" Ada@Acme.COM": 900})
    outcome = check(feed, CallFacts(model="gpt-4o", subscriber_id="u-17", subscriber_email=email))

    assert (outcome.blocking.rule_id if outcome.blocking else None) == blocked_by
    if blocked_by is not None:
        assert outcome.blocking is not None
        assert outcome.blocking.name == "Engineering"


def test_department_rules_are_decided_by_the_maps_not_by_the_rules_loop() -> None:
    # 905 is breached, but a department rule blocks only whom the server names.
    feed = department_feed()

    assert check(feed) == Outcome()
    assert department_feed(departmentBudgetBlocks={"ada@acme.com": 905}).inert is False
    assert check(department_feed(departmentBudgetBlocks={"ada@acme.com": 905})).blocking


def test_a_department_rule_named_by_text_id_is_the_same_rule() -> None:
    outcome = check(department_feed(departmentBudgetBlocks={"ada@acme.com": "900"}))

    assert outcome.blocking is not None
    assert outcome.blocking.name == "Engineering"


@pytest.mark.parametrize(
    ("model", "blocked"),
    [("claude-sonnet-4-5-20250929", True), ("gpt-4o", False), (None, False)],
)
def test_department_candidates_are_filtered_by_their_rules_filters(
    model: str | None, blocked: bool
) -> None:
    feed = department_feed(
        departmentBudgetCandidates={"ADA@acme.com": [{"ruleId": 901, "tier": "BLOCK"}]}
    )
    outcome = check(feed, CallFacts(model=model, subscriber_email="ada@acme.com"))

    assert (outcome.blocking is not None) is blocked
    assert outcome.warnings == ()


def test_a_candidate_that_does_not_apply_lets_a_later_one_block() -> None:
    feed = department_feed(
        departmentBudgetCandidates={
            "ada@acme.com": [{"ruleId": 901, "tier": "BLOCK"}, {"ruleId": 900, "tier": "BLOCK"}]
        }
    )
    outcome = check(feed, CallFacts(model="gpt-4o", subscriber_email="ada@acme.com"))

    assert outcome.blocking is not None
    assert outcome.blocking.rule_id == 900


def test_a_warn_tier_candidate_warns() -> None:
    feed = department_feed(
        departmentBudgetCandidates={"ada@acme.com": [{"ruleId": 900, "tier": "WARN"}]}
    )
    outcome = check(feed)

    assert outcome.blocking is None
    assert [r.rule_id for r in outcome.warnings] == [900]


def test_department_budget_warnings_warn() -> None:
    feed = department_feed(departmentBudgetWarnings={" ADA@acme.com": 900})

    outcome = check(feed)
    assert outcome.blocking is None
    assert [r.rule_id for r in outcome.warnings] == [900]
    assert check(feed, CallFacts(subscriber_email="bob@acme.com")) == Outcome()


def test_a_department_rule_whose_action_only_warns_warns_from_the_block_map() -> None:
    outcome = check(department_feed(departmentBudgetBlocks={"ada@acme.com": 902}))

    assert outcome.blocking is None
    assert [r.rule_id for r in outcome.warnings] == [902]


@pytest.mark.parametrize("rule_id", [903, 904], ids=["shadow", "expired"])
@pytest.mark.parametrize(
    "section",
    ["departmentBudgetBlocks", "departmentBudgetCandidates", "departmentBudgetWarnings"],
)
def test_a_shadow_or_expired_department_rule_never_blocks(rule_id: int, section: str) -> None:
    entry: object = [{"ruleId": rule_id, "tier": "BLOCK"}] if "Candidates" in section else rule_id
    outcome = check(department_feed(**{section: {"ada@acme.com": entry}}))

    assert outcome.blocking is None


def test_a_department_rule_missing_from_the_rules_still_blocks() -> None:
    feed = department_feed(departmentBudgetBlocks={"ada@acme.com": 950})
    outcome = check(feed)

    assert outcome.blocking is not None
    assert outcome.blocking.rule_id == 950
    # And a candidate naming an unknown rule blocks too: the server decided.
    feed = department_feed(departmentBudgetCandidates={"ada@acme.com": [{"ruleId": "d-1"}]})
    assert check(feed).blocking == Rule(rule_id="d-1", breached=True)


def test_a_pooled_block_is_reported_before_a_department_block() -> None:
    feed = parse_feed(
        {
            "rules": [*DEPT_RULES, rule(ruleId=7, name="Pooled")],
            "departmentBudgetBlocks": {"ada@acme.com": 900},
        }
    )

    blocking = check(feed).blocking
    assert blocking is not None
    assert blocking.rule_id == 7


# --- properties -------------------------------------------------------------------------------

JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", "BLOCK", "MODEL", "IS", "gpt-4o", "ada@acme.com", "1e999", "nan"])
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)

EMAILS = st.sampled_from(["ada@acme.com", " ADA@Acme.com ", "bob@acme.com", "u-17", ""])
VALUES = st.sampled_from(
    [
        "gpt-4o",
        "gpt-4o-2024-08-06",
        "gpt-4o-mini",
        "claude-sonnet-4-5@20250929",
        "OPENAI",
        "foundry",
        "support-bot",
        "ada@acme.com",
        "u-17",
        "eng-key",
        "",
        " ",
    ]
) | st.text(max_size=10)
RULE_IDS = st.integers(-5, 1000) | st.sampled_from(["r-1", "900", ""])
ISO_TIMES = st.builds(
    lambda dt, ns, form: (
        dt.replace(tzinfo=None).isoformat(timespec="seconds") + f".{ns:09d}Z"
        if form
        else dt.isoformat()
    ),
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]),
    ),
    st.integers(0, 999_999_999),
    st.booleans(),
)


def _maybe_junk(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a valid value, sometimes any JSON at all."""
    return st.one_of(valid, valid, valid, JSON)


def _filters(junk: bool) -> st.SearchStrategy[dict[str, Any]]:
    wrap = _maybe_junk if junk else (lambda s: s)
    return st.fixed_dictionaries(
        {
            "dimension": wrap(
                st.sampled_from([*DIMENSIONS, "model", "REGION"]) | st.text(max_size=6)
            ),
        },
        optional={
            "operator": wrap(
                st.sampled_from(["IS", "IS_NOT", "CONTAINS", "STARTS_WITH", "ENDS_WITH", "IN"])
                | st.text(max_size=6)
            ),
            "value": wrap(st.none() | VALUES),
            "values": wrap(st.lists(VALUES, max_size=3)),
        },
    )


def _rules(junk: bool) -> st.SearchStrategy[dict[str, Any]]:
    wrap = _maybe_junk if junk else (lambda s: s)
    flag = wrap(st.booleans())
    number = wrap(st.none() | st.integers(-(10**9), 10**9) | st.floats(allow_nan=False))
    text = wrap(st.none() | st.text(max_size=8))
    entry = st.fixed_dictionaries(
        {}, optional={"groupValue": wrap(st.none() | EMAILS), "breached": flag}
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "ruleId": wrap(st.none() | RULE_IDS),
            "name": text,
            "action": wrap(
                st.none() | st.sampled_from(["BLOCK", "block", "WARN_ONLY", "THROTTLE", "NOTIFY"])
            ),
            "shadowMode": flag,
            "breached": flag,
            "blocked": flag,
            "currentValue": number,
            "threshold": number,
            "resetsAt": text,
            "windowEnd": wrap(st.none() | ISO_TIMES),
            "denyMessage": text,
            "groupBy": wrap(st.none() | st.sampled_from(["SUBSCRIBER", "DEPARTMENT", "ORG_UNIT"])),
            "groupBreakdown": wrap(st.lists(entry, max_size=3)),
            "filters": wrap(st.lists(_filters(junk), max_size=3)),
            "departmentId": wrap(st.none() | RULE_IDS),
            "orgUnitId": wrap(st.none() | RULE_IDS),
            "credential": wrap(st.none() | VALUES),
        },
    )


def _feeds(junk: bool) -> st.SearchStrategy[object]:
    wrap = _maybe_junk if junk else (lambda s: s)
    rules = st.lists(_rules(junk), max_size=4)
    candidate = st.fixed_dictionaries(
        {},
        optional={
            "ruleId": wrap(st.none() | RULE_IDS),
            "tier": wrap(st.none() | st.sampled_from(["BLOCK", "WARN", "warn"])),
            "balance": wrap(st.none() | st.integers(-(10**9), 10**9)),
        },
    )
    sections = {
        "rules": wrap(st.none() | rules),
        "compiledAt": wrap(st.none() | st.text(max_size=8)),
        "departmentBudgetBlocks": wrap(st.dictionaries(EMAILS, RULE_IDS, max_size=3)),
        "orgUnitBudgetWarnings": wrap(st.dictionaries(EMAILS, RULE_IDS, max_size=3)),
        "departmentBudgetWarnings": wrap(st.dictionaries(EMAILS, RULE_IDS, max_size=3)),
        "departmentBudgetCandidates": wrap(
            st.dictionaries(EMAILS, st.lists(candidate, max_size=3), max_size=3)
        ),
        "departmentBudgetBlockBalances": wrap(
            st.dictionaries(EMAILS, st.floats(allow_nan=False), max_size=3)
        ),
    }
    body = st.fixed_dictionaries({}, optional=sections)
    return (body | rules | JSON) if junk else (body | rules)


FACTS = st.builds(
    CallFacts,
    **{
        name: st.none() | VALUES | EMAILS
        for name in (
            "model",
            "provider",
            "agent",
            "task_type",
            "product",
            "organization",
            "subscriber_id",
            "subscriber_email",
            "credential_name",
            "credential_value",
        )
    },
)
NOWS = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=-8))]),
)


def _expired(found: Rule, now: datetime) -> bool:
    return found.window_end is not None and found.window_end <= now


def _parsed(body: object) -> RuleFeed | MalformedFeedError:
    try:
        return parse_feed(body)
    except MalformedFeedError as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(body=_feeds(junk=True))
def test_parse_feed_returns_a_feed_or_raises_malformed(body: object) -> None:
    result = _parsed(body)  # anything but MalformedFeedError propagates and fails

    if isinstance(result, MalformedFeedError):
        assert result.problems
        assert all(isinstance(p, str) and p for p in result.problems)
    else:
        assert isinstance(result, RuleFeed)


@settings(max_examples=300, deadline=None)
@given(body=_feeds(junk=False), facts=FACTS, now=NOWS)
def test_evaluate_never_raises_and_never_blocks_by_a_shadow_or_expired_rule(
    body: object, facts: CallFacts, now: datetime
) -> None:
    feed = parse_feed(body)  # built from wire-valid values only: it must parse

    outcome = evaluate(feed, facts, now)

    assert isinstance(outcome, Outcome)
    assert outcome == evaluate(feed, facts, now)
    found_rules = (
        [*outcome.warnings] if outcome.blocking is None else [outcome.blocking, *outcome.warnings]
    )
    for found in found_rules:
        assert isinstance(found, Rule)
        assert not found.shadow_mode
        assert not _expired(found, now)


@settings(max_examples=300, deadline=None)
@given(body=_feeds(junk=True), facts=FACTS, now=NOWS)
def test_evaluate_never_raises_whatever_parsed(
    body: object, facts: CallFacts, now: datetime
) -> None:
    feed = _parsed(body)

    if isinstance(feed, RuleFeed):
        assert isinstance(evaluate(feed, facts, now), Outcome)


# -- semantics decided after review ------------------------------------------------------------


def test_a_rule_naming_a_platform_label_is_not_widened_by_aliases() -> None:
    # FOUNDRY counts as ANTHROPIC on the call's side, never the other way round
    foundry_rule = filtered("PROVIDER", "IS", "FOUNDRY")
    assert blocks(foundry_rule, CallFacts(provider="Foundry"))
    assert not blocks(foundry_rule, CallFacts(provider="ANTHROPIC"))
    anthropic_rule = filtered("PROVIDER", "IS", "anthropic")
    assert blocks(anthropic_rule, CallFacts(provider="Foundry"))


def test_text_dimensions_compare_without_case_or_surrounding_spaces() -> None:
    feed = filtered("ORGANIZATION", "IS", " Acme Corp ")
    assert blocks(feed, CallFacts(organization="acme corp"))
    assert not blocks(feed, CallFacts(organization="Acme Corporation"))


def test_a_rule_grouped_by_credential_is_decided_by_the_callers_credential() -> None:
    grouped = rule(
        groupBy="CREDENTIAL",
        breached=False,
        groupBreakdown=[
            {"groupValue": "team-a-key", "breached": True, "currentValue": 120.0},
            {"groupValue": "team-b-key", "breached": False},
        ],
    )
    feed = feed_of(grouped)
    assert blocks(feed, CallFacts(credential_name="Team-A-Key"))
    assert not blocks(feed, CallFacts(credential_name="team-b-key"))
    assert not blocks(feed, CallFacts(subscriber_id="team-a-key"))  # not a credential


def test_a_shadow_rule_is_reported_as_what_it_would_block_never_enforced() -> None:
    feed = feed_of(rule(ruleId=7, action="BLOCK", shadowMode=True))
    outcome = check(feed)
    assert outcome.blocking is None
    assert [r.rule_id for r in outcome.shadowed] == [7]
    assert outcome.warnings == ()


def test_a_naive_now_is_read_as_utc() -> None:
    feed = feed_of(rule(windowEnd=PAST))
    assert not blocks(feed, now=NOW.replace(tzinfo=None))


def test_a_rule_naming_one_snapshot_covers_that_snapshot_only() -> None:
    feed = filtered("MODEL", "IS", "gpt-4o-2024-05-13")
    assert blocks(feed, CallFacts(model="gpt-4o-2024-05-13"))
    assert not blocks(feed, CallFacts(model="gpt-4o"))
    assert not blocks(feed, CallFacts(model="gpt-4o-2024-08-06"))


def test_a_deployment_name_cannot_escape_a_model_rule() -> None:
    # Azure without an alias: "prod-chat" may be any model, so model filters stay in force
    deployment = CallFacts(model="prod-chat", provider="Azure", model_uncertain=True)
    assert blocks(filtered("MODEL", "IS", "gpt-4o"), deployment)
    assert blocks(filtered("MODEL", "IS_NOT", "gpt-4o"), deployment)
    assert not blocks(filtered("ORGANIZATION", "IS", "Acme"), deployment)


@settings(max_examples=200, deadline=None)
@given(body=_feeds(junk=False), facts=FACTS)
def test_the_pre_call_check_raises_nothing_but_budget_exceeded(
    body: object, facts: CallFacts
) -> None:
    """Whatever the feed holds, ``enforcement.check`` allows the call or raises
    ``BudgetExceededError`` (the issue's property: nothing else reaches a caller)."""
    from revenium import _diagnostics, config, enforcement
    from revenium.errors import BudgetExceededError

    feed = _parsed(body)
    if isinstance(feed, MalformedFeedError):
        return
    settings_ = config.configure(
        circuit_breaker_enabled=True, team_id="t", cb_poll_interval_seconds=3600
    )
    enforcement.reset()
    enforcement._adopt(settings_)
    enforcement._install(enforcement.Snapshot(feed, 0.0, "test"))
    enforcement._state.poller_alive = True
    blocked: list[BudgetExceededError] = []
    contained = _diagnostics.internal_error_count()
    try:
        enforcement.check(settings_, lambda: facts, may_wait=False)
    except BudgetExceededError as exc:
        blocked.append(exc)
    finally:
        enforcement.reset()
    assert all(e.message.startswith("Request blocked by Revenium") for e in blocked)
    # and nothing failed inside, only to be contained: the check itself never errs
    assert _diagnostics.internal_error_count() == contained


def test_a_rule_grouped_by_model_finds_the_callers_family() -> None:
    grouped = rule(
        groupBy="MODEL",
        breached=False,
        groupBreakdown=[{"groupValue": "gpt-4o-2024-08-06", "breached": True}],
    )
    feed = feed_of(grouped)
    assert blocks(feed, CallFacts(model="gpt-4o"))
    assert not blocks(feed, CallFacts(model="gpt-4o-mini"))
