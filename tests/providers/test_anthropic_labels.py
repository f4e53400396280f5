"""Provider labels and model names for Anthropic's three platforms (docs/providers/index.md)."""

from __future__ import annotations

import httpx2
import pytest
from anthropic import (
    Anthropic,
    AnthropicBedrock,
    AnthropicVertex,
    AsyncAnthropic,
    AsyncAnthropicBedrock,
    AsyncAnthropicVertex,
)

import revenium
from revenium.providers.anthropic import normalize_model


@pytest.mark.parametrize(
    ("platform_id", "name"),
    [
        ("claude-sonnet-4-6", "claude-sonnet-4-6"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku-20241022"),
        # Bedrock foundation-model ids and cross-region inference profiles
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku-20241022"),
        ("us.anthropic.claude-sonnet-4-6-v1:0", "claude-sonnet-4-6"),
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
        ("apac.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet-20250219"),
        ("global.anthropic.claude-opus-4-1-20250805-v1:0", "claude-opus-4-1-20250805"),
        ("us-gov.anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307"),
        ("anthropic.claude-opus-4-1", "claude-opus-4-1"),
        # ARNs: the resource part names the model (an application profile's does not)
        (
            "arn:aws:bedrock:us-east-1:123:inference-profile/us.anthropic.claude-sonnet-4-6-v1:0",
            "claude-sonnet-4-6",
        ),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-haiku-20241022-v1:0",
            "claude-3-5-haiku-20241022",
        ),
        (
            "arn:aws:bedrock:us-east-1:123:application-inference-profile/a1b2c3",
            "arn:aws:bedrock:us-east-1:123:application-inference-profile/a1b2c3",
        ),
        # legacy Bedrock ids whose version is part of the name
        ("anthropic.claude-v2:1", "claude-v2:1"),
        ("anthropic.claude-instant-v1", "claude-instant-v1"),
        # Vertex versions
        ("claude-sonnet-4-6@20260101", "claude-sonnet-4-6"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-v2"),
        ("", ""),
    ],
)
def test_platform_model_ids_are_normalized_to_anthropics_names(platform_id: str, name: str) -> None:
    assert normalize_model(platform_id) == name


def _transport() -> httpx2.MockTransport:
    return httpx2.MockTransport(lambda request: httpx2.Response(500))


@pytest.mark.parametrize(
    ("make", "provider"),
    [
        (
            lambda: Anthropic(api_key="k", http_client=httpx2.Client(transport=_transport())),
            "ANTHROPIC",
        ),
        (
            lambda: AsyncAnthropic(
                api_key="k", http_client=httpx2.AsyncClient(transport=_transport())
            ),
            "ANTHROPIC",
        ),
        (
            lambda: AnthropicBedrock(
                api_key="k",
                aws_region="us-east-1",
                http_client=httpx2.Client(transport=_transport()),
            ),
            "AWS",
        ),
        (
            lambda: AsyncAnthropicBedrock(
                api_key="k",
                aws_region="us-east-1",
                http_client=httpx2.AsyncClient(transport=_transport()),
            ),
            "AWS",
        ),
        (
            lambda: AnthropicVertex(
                region="us-east5",
                project_id="p",
                access_token="t",
                http_client=httpx2.Client(transport=_transport()),
            ),
            "Google",
        ),
        (
            lambda: AsyncAnthropicVertex(
                region="us-east5",
                project_id="p",
                access_token="t",
                http_client=httpx2.AsyncClient(transport=_transport()),
            ),
            "Google",
        ),
    ],
)
def test_each_client_class_is_labelled_by_its_platform(make: object, provider: str) -> None:
    client = make()  # type: ignore[operator]
    wrapped = revenium.wrap(client)
    assert type(wrapped) is type(client)
    assert wrapped is not client
    state = wrapped._revenium_state
    assert (state.labels.provider, state.labels.model_source) == (provider, "ANTHROPIC")
    assert revenium.unwrap(wrapped) is client


@pytest.mark.parametrize(
    ("base_url", "provider", "model_source"),
    [
        ("https://api.anthropic.com", "ANTHROPIC", "ANTHROPIC"),
        ("https://api.deepseek.com/anthropic", "DEEPSEEK", "DEEPSEEK"),
        ("https://llm-gateway.internal.example", "llm-gateway.internal.example", None),
    ],
)
def test_the_anthropic_sdk_pointed_elsewhere_is_labelled_by_host(
    base_url: str, provider: str, model_source: str | None
) -> None:
    client = Anthropic(
        api_key="k", base_url=base_url, http_client=httpx2.Client(transport=_transport())
    )
    labels = revenium.wrap(client)._revenium_state.labels
    assert (labels.provider, labels.model_source) == (provider, model_source)
    # a gateway's maker comes from the model's name
    assert (
        labels.model_source or (labels.maker and labels.maker("claude-sonnet-4-6")) == "ANTHROPIC"
    )


def test_objects_of_the_sdk_that_are_not_clients_are_refused() -> None:
    from anthropic.types import Usage

    client = Anthropic(api_key="k", http_client=httpx2.Client(transport=_transport()))
    for thing in (client.messages, Usage(input_tokens=1, output_tokens=1)):
        with pytest.raises(
            TypeError, match=r"does not support .*supported clients: .*AnthropicBedrock"
        ):
            revenium.wrap(thing)


def test_a_context_window_variant_is_the_same_model() -> None:
    assert (
        normalize_model("anthropic.claude-3-haiku-20240307-v1:0:200k") == "claude-3-haiku-20240307"
    )
