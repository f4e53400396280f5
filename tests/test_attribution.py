"""Metadata validation: the exact error a user sees, where they declared it."""

from __future__ import annotations

import logging
import warnings

import pytest

import revenium
from revenium.attribution import Credential, Metadata, Subscriber, merge, parse_metadata

SESSION = "revenium.session(): "


def test_camel_case_and_snake_case_are_the_same_field() -> None:
    scope = revenium.session({"organizationName": "Acme", "traceId": "t-1"}, task_type="qa")
    assert scope.metadata == Metadata(organization_name="Acme", trace_id="t-1", task_type="qa")


def test_keywords_override_the_positional_mapping() -> None:
    scope = revenium.session({"agent": "a"}, agent="b")
    assert scope.metadata.agent == "b"


def test_every_seed_field_is_accepted() -> None:
    md = parse_metadata(
        {
            "trace_id": "conv-28a7e9d4",
            "task_type": "customer-support",
            "subscriber": {
                "id": "user-1234",
                "email": "user@example.com",
                "credential": {"name": "engineering-api-key", "value": "sk-1234567890abcdef"},
            },
            "organizationName": "AcmeCorp",
            "subscription_id": "pro-plan-Q1",
            "productName": "customer-support-chatbot",
            "agent": "support-agent",
            "response_quality_score": 0.92,
            "environment": "production",
            "region": "us-east-1",
            "credential_alias": "prod-openai-key",
            "trace_type": "customer-support",
            "trace_name": "Support Chat Session",
            "parent_transaction_id": "parent-txn-123",
            "transaction_name": "Generate Response",
            "retry_number": 2,
            "agenticJobId": "job-1",
            "agentic_job_name": "triage",
            "agentic_job_type": "support",
            "agentic_job_version": "3",
            "squad_id": "sq-1",
            "squadName": "blue",
            "squad_role": "lead",
        },
        origin="test",
        strict=True,
    )
    assert md.subscriber == Subscriber(
        id="user-1234",
        email="user@example.com",
        credential=Credential(name="engineering-api-key", value="sk-1234567890abcdef"),
    )
    assert md.organization_name == "AcmeCorp"
    assert md.product_name == "customer-support-chatbot"
    assert md.retry_number == 2
    assert md.agentic_job_id == "job-1"
    assert md.squad_name == "blue"
    assert "sk-1234567890abcdef" not in repr(md)  # a credential value stays out of reprs


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"trace_type": "has space"},
            "trace_type must be 1 to 128 characters of letters, digits, '_' and '-'; "
            "got 'has space'",
        ),
        (
            {"trace_type": "valid\n"},
            "trace_type must be 1 to 128 characters of letters, digits, '_' and '-'; "
            "got 'valid\\n'",
        ),
        (
            {"trace_type": "x" * 129},
            "trace_type must be 1 to 128 characters of letters, digits, '_' and '-'; "
            f"got '{'x' * 129}'",
        ),
        ({"trace_name": "n" * 257}, "trace_name must be at most 256 characters; got 257"),
        (
            {"response_quality_score": 1.5},
            "response_quality_score must be a number from 0 to 1; got 1.5",
        ),
        (
            {"response_quality_score": -0.01},
            "response_quality_score must be a number from 0 to 1; got -0.01",
        ),
        (
            {"response_quality_score": True},
            "response_quality_score must be a number from 0 to 1; got True",
        ),
        (
            {"response_quality_score": "0.5"},
            "response_quality_score must be a number from 0 to 1; got '0.5'",
        ),
        (
            {"subscriber": "user-1"},
            "subscriber must be a mapping such as {'id': ..., 'email': ...}; got str",
        ),
        (
            {"subscriber": {"id": "u1", "phone": "1"}},
            "unknown subscriber field 'phone' (use id, email, credential)",
        ),
        (
            {"subscriber": {"credential": "secret"}},
            "subscriber.credential must be a mapping such as {'name': ..., 'value': ...}; got str",
        ),
        ({"subscriber": {"email": 7}}, "subscriber.email must be a string; got int"),
        ({"organization_name": 42}, "organization_name must be a string; got int"),
        ({"retry_number": -1}, "retry_number must be a whole number >= 0; got -1"),
        (
            {"agentic_job_id": "types"},
            "agentic_job_id must start with a letter or digit and have at most 255 characters "
            "of letters, digits, '.', '_' and '-' (not 'types' or 'conversion-funnel'); "
            "got 'types'",
        ),
        (
            {"organisation_name": "Acme"},
            "unknown metadata field 'organisation_name'; did you mean 'organization_name'?",
        ),
        (
            {"trace_id": "a", "traceId": "b"},
            "trace_id given twice (as 'trace_id' and 'traceId') with different values",
        ),
    ],
)
def test_invalid_metadata_raises_in_session_with_the_exact_message(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError) as excinfo:
        revenium.session(fields)
    assert str(excinfo.value) == SESSION + message


def test_limits_themselves_are_valid() -> None:
    scope = revenium.session(
        trace_type="a-Z_9" + "x" * 123,
        trace_name="n" * 256,
        response_quality_score=0,
        retry_number=0,
    )
    assert len(scope.metadata.trace_type or "") == 128
    assert revenium.session(response_quality_score=1).metadata.response_quality_score == 1


def test_decorator_and_meter_raise_at_decoration_naming_themselves() -> None:
    with pytest.raises(ValueError, match=r"^revenium\.metadata\(\): trace_name must be"):
        revenium.metadata(trace_name="n" * 300)
    with pytest.raises(ValueError, match=r"^revenium\.meter\(\): response_quality_score"):
        revenium.meter(response_quality_score=2)


def test_a_non_mapping_positional_argument_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^revenium\.session\(\): metadata must be a mapping"):
        revenium.session(["organization_name", "Acme"])  # type: ignore[arg-type]


def test_direct_construction_validates_too() -> None:
    with pytest.raises(ValueError, match="trace_type must be"):
        Metadata(trace_type="no spaces please")


def test_empty_and_none_values_mean_not_set() -> None:
    scope = revenium.session(organization_name="", trace_id=None, subscriber={"id": ""})
    assert scope.metadata == Metadata()


def test_numeric_subscriber_id_becomes_text() -> None:
    assert revenium.session(subscriber={"id": 42}).metadata.subscriber == Subscriber(id="42")


def test_flat_subscriber_keys_fold_into_the_subscriber() -> None:
    scope = revenium.session(subscriber_id="u1", subscriberEmail="u1@x.com")
    assert scope.metadata.subscriber == Subscriber(id="u1", email="u1@x.com")


@pytest.mark.parametrize(
    ("legacy", "name"),
    [
        ("organization_id", "organization_name"),
        ("organizationId", "organization_name"),
        ("product_id", "product_name"),
        ("productId", "product_name"),
    ],
)
def test_legacy_ids_map_to_names_with_a_deprecation_warning_at_the_callers_line(
    legacy: str, name: str
) -> None:
    with pytest.warns(DeprecationWarning, match=f"'{legacy}' is deprecated; use '{name}'") as rec:
        scope = revenium.session({legacy: "Acme"})
    assert getattr(scope.metadata, name) == "Acme"
    assert rec[0].filename == __file__


def test_the_new_name_wins_over_a_legacy_alias() -> None:
    with pytest.warns(DeprecationWarning, match="'organization_id' is deprecated"):
        scope = revenium.session(organization_id="old", organization_name="new")
    assert scope.metadata.organization_name == "new"


def test_lenient_parsing_drops_bad_fields_keeps_the_rest_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="revenium")
    for _ in range(3):
        md = parse_metadata(
            {"trace_type": "bad type", "organization_name": "Acme", "nonsense": 1},
            origin="usage_metadata",
            strict=False,
        )
        assert md == Metadata(organization_name="Acme")
    assert sorted(r.getMessage() for r in caplog.records) == [
        "revenium: ignoring invalid metadata from usage_metadata: trace_type must be 1 to 128 "
        "characters of letters, digits, '_' and '-'; got 'bad type'",
        "revenium: ignoring invalid metadata from usage_metadata: unknown metadata field "
        "'nonsense'",
    ]


def test_lenient_parsing_survives_warnings_turned_into_errors() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        md = parse_metadata({"organizationId": "Acme"}, origin="usage_metadata", strict=False)
    assert md.organization_name == "Acme"


def test_merge_inner_wins_field_by_field_and_none_never_blanks() -> None:
    outer = Metadata(organization_name="Acme", trace_id="outer", agent="a")
    inner = Metadata(trace_id="inner")
    assert merge(outer, inner) == Metadata(organization_name="Acme", trace_id="inner", agent="a")


def test_merge_replaces_the_subscriber_whole() -> None:
    outer = Metadata(subscriber=Subscriber(id="u1", email="u1@x.com"))
    inner = Metadata(subscriber=Subscriber(email="u2@x.com"))
    assert merge(outer, inner).subscriber == Subscriber(email="u2@x.com")


def test_repr_shows_only_set_fields() -> None:
    assert repr(Metadata(agent="bot", retry_number=1)) == "Metadata(agent='bot', retry_number=1)"


def test_the_seed_meter_spelling_with_a_metadata_keyword_is_accepted() -> None:
    scope = revenium.meter(metadata={"organizationName": "Acme"}, task_type="premium")
    assert scope.metadata == Metadata(organization_name="Acme", task_type="premium")
    assert scope.metered


def test_decorator_legacy_alias_warns_at_the_decorators_line() -> None:
    with pytest.warns(DeprecationWarning, match="'productId' is deprecated") as record:
        revenium.metadata(productId="bot")
    assert record[0].filename == __file__
