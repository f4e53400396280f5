"""Prompt capture: masking, exact truncation and always-valid JSON for ``inputMessages``."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from revenium.capture import (
    DEFAULT_LIMIT,
    MIN_LIMIT,
    TRUNCATION_MARKER,
    PromptCapture,
    cap_messages,
    cap_text,
    capture,
    mask_secrets,
)

M = TRUNCATION_MARKER
R = "[REDACTED]"


def compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- mask_secrets ------------------------------------------------------------------------------

OPENAI_KEY = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
ANTHROPIC_KEY = "sk-ant-api03-" + "x" * 20 + "Y7z" + "_-AA"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

SECRET_CASES = [
    (f"key {OPENAI_KEY} here", f"key {R} here"),
    (f"use {ANTHROPIC_KEY}.", f"use {R}."),
    ("legacy sk-" + "a1B2c3D4e5F6g7H8i9J0" * 2, f"legacy {R}"),
    ("stripe sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", f"stripe {R}"),
    ("hak_" + "9f8e7d6c5b4a3210ffee", R),
    ("(rev_" + "a1b2c3d4e5f6a7b8c9d0)", f"({R})"),
    ("aws AKIAIOSFODNN7EXAMPLE ok", f"aws {R} ok"),
    ("ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8", R),
    ("gho_" + "16C7e42F292c6912E7710c838347Ae178B4a", R),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", R),
    ("slack xoxb-1234567890-0987654321-AbCdEfGhIjKl", f"slack {R}"),
    ("slack xoxp-1234567890-abcdef", f"slack {R}"),
    ("g AIzaSyA-1234567890abcdefghijklmnopqrstu end", f"g {R} end"),
    ("Authorization: Bearer abc123.def456-ghi", f"Authorization: Bearer {R}"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Authorization: Basic {R}"),
    ("authorization: basic YWxhZGRpbjpvcGVuc2VzYW1l", f"authorization: basic {R}"),
    (f"id_token {JWT} end", f"id_token {R} end"),
    (f"Bearer {JWT}", f"Bearer {R}"),
    (
        "postgres://admin:s3cr3t!@db.example.com:5432/app",
        f"postgres://admin:{R}@db.example.com:5432/app",
    ),
    ("redis://:hunter2@cache:6379", f"redis://:{R}@cache:6379"),
    (
        "https://b.s3.amazonaws.com/f?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Signature=abcdef0123&X-Amz-Expires=60",
        f"https://b.s3.amazonaws.com/f?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Signature={R}&X-Amz-Expires=60",
    ),
    (
        "https://storage.googleapis.com/b/o?X-Goog-Signature=0a1b2c&x=1",
        f"https://storage.googleapis.com/b/o?X-Goog-Signature={R}&x=1",
    ),
    (
        "https://a.blob.core.windows.net/c/b?sv=2020-08-04&sig=AbC%2Fdef%3D",
        f"https://a.blob.core.windows.net/c/b?sv=2020-08-04&sig={R}",
    ),
    (
        "https://x.io/cb?token=abc&key=xyz&access_token=q1&api_key=k&apikey=z&signature=s&page=2",
        f"https://x.io/cb?token={R}&key={R}&access_token={R}&api_key={R}&apikey={R}"
        f"&signature={R}&page=2",
    ),
    ("OPENAI_API_KEY=abc123 next", f"OPENAI_API_KEY={R} next"),
    ("DB_SECRET=hunter2", f"DB_SECRET={R}"),
    ("GITHUB_TOKEN=foo\nPATH=/usr/bin", f"GITHUB_TOKEN={R}\nPATH=/usr/bin"),
    ("login with password=hunter2 please", f"login with password={R} please"),
    ('{"password": "hunter2", "user": "bob"}', f'{{"password": "{R}", "user": "bob"}}'),
    ("{'token': 'abc', 'n': 1}", f"{{'token': '{R}', 'n': 1}}"),
    ('password = "a \\" b" tail', f'password = "{R}" tail'),
    ('password="unterminated', f'password="{R}'),
    ("api_key: abc123", f"api_key: {R}"),
    ("x-api-key: zzz", f"x-api-key: {R}"),
    (
        'export AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"',
        f'export AWS_SECRET_ACCESS_KEY="{R}"',
    ),
    ('client_secret: "s"', f'client_secret: "{R}"'),
]


@pytest.mark.parametrize(("text", "expected"), SECRET_CASES)
def test_mask_secrets_exact(text: str, expected: str) -> None:
    assert mask_secrets(text) == expected


@pytest.mark.parametrize("expected", [expected for _, expected in SECRET_CASES])
def test_mask_secrets_is_idempotent(expected: str) -> None:
    assert mask_secrets(expected) == expected


PROSE = [
    "the key to success is patience",
    "tokens used: 42",
    "max_tokens=1024, prompt_tokens: 12, completion_tokens: 30",
    "The bearer of bad news. Bearer bonds are rare.",
    "A basic understanding. Basic Information for everyone.",
    "Secret: love. Token: the word. The secret ingredient is time.",
    "if token == expected: return",
    "task-management-system-for-teams and sk-this-is-a-long-slug-name",
    "rev_share_percentage_total and hak_tutorial_introduction",
    "https://example.com/path?page=2&sort=desc and http://localhost:8080/api",
    "We use a key-value store; the API key rotation policy is monthly.",
    "eyJ alone, AKIA alone, ghp_short, xoxb-1",
    "café ☕ naïve 日本語 emoji 😀",
    "",
]


@pytest.mark.parametrize("text", PROSE)
def test_mask_secrets_leaves_prose_alone(text: str) -> None:
    assert mask_secrets(text) == text


ADVERSARIAL = [
    "a" * 200_000,
    "sk-" * 70_000,
    "eyJ" * 70_000,
    "eyJa." * 40_000,
    "Bearer " * 30_000,
    "Basic " + "A" * 200_000,
    "://" * 70_000,
    "://a:" * 40_000,
    "://" + "a" * 200_000 + ":",
    "?key=" * 40_000,
    "password=" * 25_000,
    "password:" * 25_000,
    '"password": "' * 15_000,
    'password="' * 20_000,
    "\\" * 200_000,
    '"' * 200_000,
    "_TOKEN=" * 30_000,
    "a-" * 100_000,
    "AKIA" * 50_000,
    "ghp_" * 50_000,
    "xoxb-" * 40_000,
    "AIza" * 50_000,
]


def test_mask_secrets_is_linear_on_adversarial_input() -> None:
    # Catastrophic backtracking would hang here (pytest-timeout ends it); no timing asserted.
    for text in ADVERSARIAL:
        assert isinstance(mask_secrets(text), str)
    assert mask_secrets("a" * 200_000) == "a" * 200_000
    assert mask_secrets("Basic " + "A" * 200_000) == "Basic " + "A" * 200_000


# --- cap_text ----------------------------------------------------------------------------------


def test_cap_text_at_limit_is_untouched() -> None:
    assert cap_text("a" * 300, limit=300) == ("a" * 300, False)


def test_cap_text_one_over_limit_is_exactly_limit() -> None:
    text, truncated = cap_text("a" * 301, limit=300)
    assert truncated
    assert text == "a" * 286 + M
    assert len(text) == 300


def test_cap_text_clamps_small_limits() -> None:
    assert cap_text("a" * MIN_LIMIT, limit=10) == ("a" * MIN_LIMIT, False)
    assert cap_text("a" * 201, limit=0) == ("a" * 186 + M, True)


def test_cap_text_default_limit() -> None:
    text, truncated = cap_text("x" * (DEFAULT_LIMIT + 1))
    assert truncated
    assert text == "x" * (DEFAULT_LIMIT - 14) + M


def test_cap_text_masks_before_cutting() -> None:
    # The key straddles the cut: masking first means no half-key survives.
    text, truncated = cap_text("a" * 170 + " " + OPENAI_KEY + " " + "b" * 100, limit=200)
    assert truncated
    assert text == "a" * 170 + " " + R + " " + "b" * 4 + M


def test_cap_text_replaces_lone_surrogates() -> None:
    assert cap_text("a\ud800b") == ("a?b", False)


# --- cap_messages ------------------------------------------------------------------------------


def test_cap_messages_small_list_is_compact_json() -> None:
    messages = [{"role": "user", "content": "héllo 😀"}, {"role": "assistant", "content": "hi"}]
    expected = '[{"role":"user","content":"héllo 😀"},{"role":"assistant","content":"hi"}]'
    assert cap_messages(messages) == (expected, False)
    assert cap_messages([]) == ("[]", False)


def test_cap_messages_shortens_longest_string_first() -> None:
    messages = [{"role": "user", "content": "short"}, {"role": "assistant", "content": "x" * 1000}]
    skeleton = compact([{"role": "user", "content": "short"}, {"role": "assistant", "content": ""}])
    text, truncated = cap_messages(messages, limit=300)
    kept = "x" * (300 - len(skeleton) - len(M)) + M
    assert truncated
    assert text == compact([messages[0], {"role": "assistant", "content": kept}])
    assert len(text) == 300


def test_cap_messages_cuts_long_strings_to_a_common_level() -> None:
    messages = ["s" * 10, "a" * 1000, "b" * 600]
    text, truncated = cap_messages(messages, limit=400)
    assert truncated
    # 400 = 2 brackets + 2 commas + 6 quotes + 10 + 2 * level, so level == 190.
    assert json.loads(text) == ["s" * 10, "a" * 176 + M, "b" * 176 + M]
    assert len(text) == 400


def test_cap_messages_counts_json_escapes() -> None:
    text, truncated = cap_messages(['"\n' * 500], limit=200)
    assert truncated
    # 200 = 4 for `[""]` + 14 marker + 182 encoded: 45 pairs of 4 plus one escaped quote.
    assert len(text) == 200
    assert json.loads(text) == ['"\n' * 45 + '"' + M]


def test_cap_messages_drops_oldest_first() -> None:
    messages = [{"role": "user", "content": f"message {i:04d}"} for i in range(500)]
    text, truncated = cap_messages(messages, limit=1000)
    # Each message is 40 characters; 24 of them plus brackets and commas take 985.
    assert truncated
    assert text == compact(messages[-24:])


def test_cap_messages_keeps_newest_and_cuts_it_when_needed() -> None:
    messages: list[object] = [{"role": "user", "content": f"m{i:03d}"} for i in range(100)]
    messages.append({"role": "user", "content": "x" * 100_000})
    text, truncated = cap_messages(messages, limit=1000)
    parsed = json.loads(text)
    assert truncated
    assert len(text) <= 1000
    assert parsed[:-1] == messages[-len(parsed) : -1]
    assert len(parsed) > 2
    content = parsed[-1]["content"]
    assert content == "x" * (len(content) - len(M)) + M


def test_cap_messages_single_giant_structure_falls_back_to_text() -> None:
    message = {"role": "user", "content": [{"type": "text", "text": str(i)} for i in range(500)]}
    text, truncated = cap_messages([message], limit=200)
    assert truncated
    assert len(text) <= 200
    parsed: list[str] = json.loads(text)
    assert parsed[0].startswith('{"role":"user","content":[{"type":"text","text":"0"}')
    assert parsed[0].endswith(M)


def test_cap_messages_masks_nested_strings_but_not_keys() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"my key is {OPENAI_KEY}"},
                {"type": "image_url", "image_url": {"url": "https://x.io/y.png?sig=abc123"}},
            ],
        },
        {"role": "tool", "content": {"args": {"password": "hunter2", "user": "bob"}}},
        {OPENAI_KEY: "value"},
    ]
    text, truncated = cap_messages(messages)
    assert not truncated
    assert text == compact(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"my key is {R}"},
                    {"type": "image_url", "image_url": {"url": f"https://x.io/y.png?sig={R}"}},
                ],
            },
            {"role": "tool", "content": {"args": {"password": R, "user": "bob"}}},
            {OPENAI_KEY: "value"},
        ]
    )


def test_cap_messages_multimodal_stays_structured() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "describe"}, image]}]
    text, truncated = cap_messages(messages, limit=1000)
    parsed = json.loads(text)
    assert truncated
    assert len(text) == 1000
    parts = parsed[0]["content"]
    assert parts[0] == {"type": "text", "text": "describe"}
    assert parts[1]["type"] == "image_url"
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,AAAA")
    assert parts[1]["image_url"]["url"].endswith("A" + M)


class FakeModel:
    """Quacks like a pydantic v2 model."""

    def __init__(self, **fields: object) -> None:
        self.fields = fields

    def model_dump(self, *, mode: str = "python", exclude_none: bool = False) -> dict[str, Any]:
        assert mode == "json"
        return {k: v for k, v in self.fields.items() if not (exclude_none and v is None)}


class LegacyModel:
    def model_dump(self) -> dict[str, Any]:
        return {"role": "user", "content": "legacy"}


@dataclasses.dataclass
class DataMessage:
    role: str
    content: object


@attrs.define
class AttrsMessage:
    role: str
    content: object


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


class Custom:
    def __str__(self) -> str:
        return f"custom {OPENAI_KEY}"


def test_cap_messages_converts_odd_objects() -> None:
    loop: list[object] = ["loop"]
    loop.append(loop)
    messages = [
        FakeModel(role="user", content="hi", name=None),
        LegacyModel(),
        DataMessage("user", b"\x00\x01\x02\x03\x04"),
        AttrsMessage("assistant", (1, 2.5, True, None)),
        {1: bytearray(3), None: memoryview(b"ab"), "f": float("nan"), "i": float("inf")},
        Unprintable(),
        Custom(),
        frozenset(["only"]),
        loop,
        10**5000,
    ]
    text, truncated = cap_messages(messages)
    assert not truncated
    assert json.loads(text) == [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "legacy"},
        {"role": "user", "content": "<5 bytes>"},
        {"role": "assistant", "content": [1, 2.5, True, None]},
        {"1": "<3 bytes>", "None": "<2 bytes>", "f": "nan", "i": "inf"},
        "<unprintable Unprintable>",
        f"custom {R}",
        ["only"],
        ["loop", "<cycle>"],
        "<int of 16610 bits>",
    ]


class BrokenModel:
    def model_dump(self, **_: object) -> dict[str, Any]:
        raise ValueError("cannot serialise")

    def __str__(self) -> str:
        return "BrokenModel(api_key=abc123)"


def test_cap_messages_degrades_failing_objects_to_masked_text() -> None:
    # Unquoted values run to whitespace/quote/,;&<>: a ")" could be part of the password.
    assert cap_messages([BrokenModel()]) == (f'["BrokenModel(api_key={R}"]', False)


def test_cap_messages_accepts_a_bare_string_and_cleans_surrogates() -> None:
    assert cap_messages("just a prompt") == ('["just a prompt"]', False)
    assert cap_messages([{"k\ud800": "v\udfff"}]) == ('[{"k?":"v?"}]', False)


def test_cap_messages_marks_overly_deep_nesting_as_truncated() -> None:
    deep: object = "bottom"
    for _ in range(100):
        deep = [deep]
    text, truncated = cap_messages([deep])
    assert truncated
    assert "<nested too deep>" in text
    json.loads(text)


def test_cap_messages_five_megabytes() -> None:
    messages = [{"role": "user", "content": f"{i} " + "hello world " * 8_000} for i in range(50)]
    text, truncated = cap_messages(messages)
    parsed = json.loads(text)
    assert truncated
    assert len(text) <= DEFAULT_LIMIT
    assert [m["content"].split(" ")[0] for m in parsed] == [str(i) for i in range(50)]
    assert all(m["content"].endswith(M) for m in parsed)


def test_cap_messages_many_tiny_messages() -> None:
    messages = [{"role": "user", "content": f"m{i}"} for i in range(100_000)]
    text, truncated = cap_messages(messages)
    parsed = json.loads(text)
    assert truncated
    assert len(text) <= DEFAULT_LIMIT
    assert parsed == messages[-len(parsed) :]
    assert len(text) > DEFAULT_LIMIT - 40


def repeated(char: str, count: int) -> str:
    return char * count


JSON_VALUES: st.SearchStrategy[object] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.builds(repeated, st.characters(), st.integers(0, 3000)),
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(messages=st.lists(JSON_VALUES, max_size=8), limit=st.integers(0, 3000))
def test_cap_messages_always_valid_json_within_limit(messages: list[object], limit: int) -> None:
    text, truncated = cap_messages(messages, limit=limit)
    json.loads(text)
    text.encode("utf-8")
    assert len(text) <= max(limit, MIN_LIMIT)
    if not truncated:
        assert len(json.loads(text)) == len(messages)


SAFE_TEXT = st.text(alphabet='ab \n"\\é😀', max_size=40)
SAFE_VALUES: st.SearchStrategy[object] = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | SAFE_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(SAFE_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(messages=st.lists(SAFE_VALUES, max_size=5), limit=st.integers(200, 600))
def test_cap_messages_is_lossless_when_it_fits(messages: list[object], limit: int) -> None:
    text, truncated = cap_messages(messages, limit=limit)
    assert truncated == (len(compact(messages)) > limit)
    if not truncated:
        assert text == compact(messages)


# --- capture -----------------------------------------------------------------------------------


def test_capture_all_absent() -> None:
    assert capture(system_prompt=None, messages=None, output_response=None) == PromptCapture(
        None, None, None, truncated=False
    )


def test_capture_small_fields_untouched_but_masked() -> None:
    result = capture(
        system_prompt="be nice",
        messages=[{"role": "user", "content": "password=hunter2"}],
        output_response="ok",
    )
    assert result == PromptCapture(
        system_prompt="be nice",
        input_messages=f'[{{"role":"user","content":"password={R}"}}]',
        output_response="ok",
        truncated=False,
    )


@pytest.mark.parametrize("field", ["system_prompt", "messages", "output_response"])
def test_capture_truncated_when_any_field_is(field: str) -> None:
    values: dict[str, Any] = {"system_prompt": "s", "messages": ["m"], "output_response": "o"}
    values[field] = ["z" * 500] if field == "messages" else "z" * 500
    result = capture(**values, limit=10)
    assert result.truncated
    if field == "output_response":
        assert result.output_response == "z" * 186 + M
        assert result.system_prompt == "s"
        assert result.input_messages == '["m"]'
