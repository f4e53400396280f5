"""Prompt capture: bounded, secret-free copies of prompts and responses for metering records.

Prompts are the most sensitive thing an SDK ever sees and they leave the process once captured,
so every captured field goes through here first.  Three promises are kept for the record
builders: credentials are masked *before* anything is cut (a truncated key must not leak its
first half), each field fits the configured limit exactly, and ``inputMessages`` is valid JSON
whatever the caller passed in, because one odd message must never cost the whole usage record.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Final, TypeAlias, cast

import attrs

__all__ = [
    "DEFAULT_LIMIT",
    "MIN_LIMIT",
    "TRUNCATION_MARKER",
    "PromptCapture",
    "cap_messages",
    "cap_text",
    "capture",
    "mask_secrets",
]

TRUNCATION_MARKER: Final = "...[TRUNCATED]"
DEFAULT_LIMIT: Final = 50_000
MIN_LIMIT: Final = 200

_REDACTED: Final = "[REDACTED]"
_MIN_SHORTENED: Final = 64  # strings are not cut below this before whole messages are dropped
_MAX_DEPTH: Final = 64
_ENCODER: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)

_Json: TypeAlias = "bool | int | float | str | list[_Json] | dict[str, _Json] | None"
_Rule: TypeAlias = "tuple[re.Pattern[str], Callable[[re.Match[str]], str]]"

# Patterns start on a literal or a one-character look-ahead (so the engine can skip ahead
# quickly), check the character before a credential with a fixed-width look-behind, and use
# possessive quantifiers, so no run of token characters is ever re-scanned: masking stays
# linear even on hostile input such as 200k repetitions of "eyJ" or "password=".
_T = r"A-Za-z0-9_\-"  # base64url / identifier characters
_KEY = re.compile(
    rf"(?=[shrAgx])(?<![{_T}])(?:"
    rf"(?P<loose>(?:sk-|hak_|rev_)[{_T}]{{16,}}+|sk_(?:live|test)_[A-Za-z0-9]{{16,}}+)"
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Za-z0-9])"
    r"|gh[pousr]_[A-Za-z0-9]{30,}+|github_pat_[A-Za-z0-9_]{20,}+"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}+"
    rf"|AIza[{_T}]{{35}}(?![{_T}])"
    r")"
)
_JWT = re.compile(rf"eyJ(?<![{_T}]eyJ)[{_T}]*+\.[{_T}]++\.[{_T}]*+")
_AUTH_SCHEME = re.compile(
    r"((?i:bearer(?<![A-Za-z0-9]......)|basic(?<![A-Za-z0-9].....))[ \t]++)"
    r"([A-Za-z0-9._~+/\-]++=*+)"
)
_URL_PASSWORD = re.compile(r"(://[^\s/?#@:]*+:)[^\s/?#@]++(?=@)")
_URL_PARAM = re.compile(
    r"([?&](?i:x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature"
    r"|x-goog-credential|sig|signature|token|access_token|api_key|apikey|key)=)[^&#\s\"'<>]++"
)
_STRONG = (
    r"api[_-]?key|access[_-]?key|secret[_-]?key|private[_-]?key|client[_-]?secret"
    r"|(?:access|auth|refresh|session|id)[_-]?token|password|passwd|passphrase"
)
_LABEL = re.compile(
    rf"(?=[acdiprstACDIPRST])(?<![A-Za-z0-9])(?P<kw>(?i:(?P<strong>{_STRONG})|secret|token))"
    r"(?P<sep>[\"']?[ \t]*+(?:=(?!=)|:)[ \t]*+)"
    r"(?P<val>\"(?:[^\"\\\n]|\\.)*+(?P<dq>\")?|'(?:[^'\\\n]|\\.)*+(?P<sq>')?|[^\s\"'&,;<>]++)"
)
_TRIGGER = re.compile(
    r"[=:]|sk[-_]|hak_|rev_|A(?:KIA|SIA|Iza)|gh[pousr]_|github_pat_|xox|eyJ|(?i:bearer|basic)"
)  # nothing can match without one of these; most short chat strings are skipped in one scan
_SENSITIVE_KEY = re.compile(rf"(?:^|[^A-Za-z0-9])(?i:{_STRONG}|secret|token|authorization)$")


def _looks_random(token: str) -> bool:
    """Separate generated credentials from identifiers and prose sharing their prefix."""
    if any(c.isdigit() or c in "+/=" for c in token):
        return True
    return any(c.islower() for c in token) and sum(c.isupper() for c in token[1:]) >= 2


def _mask_key(m: re.Match[str]) -> str:
    if m.group("loose") is not None and not _looks_random(m.group()):
        return m.group()  # "sk-this-is-a-slug", "rev_share_total": names, not keys
    return _REDACTED


def _mask_scheme(m: re.Match[str]) -> str:
    token = m.group(2)
    if len(token) < 8 or not _looks_random(token):
        return m.group()  # "Bearer of bad news", "basic understanding"
    return m.group(1) + _REDACTED


def _mask_label(m: re.Match[str]) -> str:
    quote = m.group("val")[0] if m.group("val")[0] in "\"'" else ""
    if not quote and m.group("strong") is None and ":" in m.group("sep"):
        return m.group()  # "Secret: love" is prose; only `token: "..."` is a credential
    close = m.group("dq") or m.group("sq") or ""
    return m.group("kw") + m.group("sep") + quote + _REDACTED + close


_RULES: Final[tuple[_Rule, ...]] = (
    (_KEY, _mask_key),
    (_JWT, lambda _: _REDACTED),
    (_AUTH_SCHEME, _mask_scheme),
    (_URL_PASSWORD, lambda m: m.group(1) + _REDACTED),
    (_URL_PARAM, lambda m: m.group(1) + _REDACTED),
    (_LABEL, _mask_label),
)


def mask_secrets(text: str) -> str:
    """Replace credentials with ``[REDACTED]`` so captured text is safe to ship and store.

    Bare credentials vanish entirely (``sk-``, ``sk-proj-``, ``sk-ant-``, ``sk_live_``,
    ``hak_``, ``rev_`` keys, ``AKIA``/``ASIA`` ids, ``gh?_``/``github_pat_`` and ``xox?-``
    tokens, ``AIza`` keys, JWTs): even a prefix narrows an attacker's search.  Where a label
    says *what* was there it stays for readability: ``Bearer [REDACTED]``, ``Basic
    [REDACTED]``, ``scheme://user:[REDACTED]@host``, ``?X-Amz-Signature=[REDACTED]`` (also
    ``X-Goog-Signature``, ``sig``, ``signature``, ``token``, ``access_token``, ``api_key``,
    ``apikey``, ``key``), ``FOO_SECRET=[REDACTED]``, ``"password": "[REDACTED]"``.

    Prose survives: keys and ``Bearer``/``Basic`` values must look generated (a digit, one of
    ``+/=``, or mixed case), bare ``secret``/``token`` labels before ``:`` only count with a
    quoted value, and ``token == x`` is a comparison.  Masking is idempotent.
    """
    if _TRIGGER.search(text) is None:
        return text
    for pattern, replace in _RULES:
        text = pattern.sub(replace, text)
    return text


def _utf8_safe(text: str) -> str:
    """Replace lone surrogates, which would make the record unencodable on the wire."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def cap_text(text: str, limit: int = DEFAULT_LIMIT) -> tuple[str, bool]:
    """Mask first, so a cut can never leave half a key, then cut to exactly ``limit``.

    The marker counts towards ``limit`` so the backend never has to reject or re-truncate the
    field; limits below ``MIN_LIMIT`` are raised to it because shorter captures are useless.
    """
    limit = max(limit, MIN_LIMIT)
    text = _utf8_safe(mask_secrets(text))
    if len(text) <= limit:
        return text, False
    return text[: limit - len(TRUNCATION_MARKER)] + TRUNCATION_MARKER, True


def _safe_str(obj: object) -> str:
    try:
        return str(obj)
    except Exception:  # noqa: BLE001 - a broken __str__ must not lose the usage record
        return f"<unprintable {type(obj).__name__}>"


def _scalar(obj: object) -> _Json:
    """Coerce to exact JSON types: enum subclasses, NaN and huge ints break strict parsers."""
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return int(obj) if obj.bit_length() <= 10_000 else f"<int of {obj.bit_length()} bits>"
    if isinstance(obj, float):
        return float(obj) if obj - obj == 0 else str(obj)
    return f"<{obj.nbytes if isinstance(obj, memoryview) else len(cast('bytes', obj))} bytes>"


class _Converter:
    """Turn arbitrary SDK message objects into plain JSON values with masked strings.

    Conversion never raises: whatever cannot be represented degrades to a string, because the
    capture is a best-effort side channel of a metering record that must still be sent.
    """

    def __init__(self) -> None:
        self.lossy = False  # content was dropped for depth, so the capture is truncated
        self._active: set[int] = set()

    def text(self, value: str) -> str:
        return mask_secrets(_utf8_safe(value))

    def convert(self, obj: object, depth: int = 0) -> _Json:
        if isinstance(obj, str):
            return self.text(str.__str__(obj))
        if obj is None or isinstance(obj, bool | int | float | bytes | bytearray | memoryview):
            return _scalar(cast("object", obj))
        if id(obj) in self._active:
            return "<cycle>"
        if depth >= _MAX_DEPTH:
            self.lossy = True
            return "<nested too deep>"
        self._active.add(id(obj))
        try:
            return self._compound(obj, depth + 1)
        except Exception:  # noqa: BLE001 - odd objects degrade to text, see class docstring
            return self.text(_safe_str(obj))
        finally:
            self._active.discard(id(obj))

    def _compound(self, obj: object, depth: int) -> _Json:
        if isinstance(obj, Mapping):
            return self._mapping(cast("Mapping[object, object]", obj).items(), depth)
        if isinstance(obj, Sequence | AbstractSet):
            return [self.convert(item, depth) for item in cast("Iterable[object]", obj)]
        dump = getattr(obj, "model_dump", None)
        if callable(dump):
            try:
                dumped: object = dump(mode="json", exclude_none=True)
            except TypeError:
                dumped = dump()
            return self.convert(dumped, depth)
        cls = type(obj)
        if attrs.has(cls):
            return self._mapping(((a.name, getattr(obj, a.name)) for a in attrs.fields(cls)), depth)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = dataclasses.fields(obj)
            return self._mapping(((f.name, getattr(obj, f.name)) for f in fields), depth)
        return self.text(_safe_str(obj))

    def _mapping(self, items: Iterable[tuple[object, object]], depth: int) -> dict[str, _Json]:
        result: dict[str, _Json] = {}
        for key, value in items:
            name = _utf8_safe(str.__str__(key) if isinstance(key, str) else _safe_str(key))
            if isinstance(value, str) and _SENSITIVE_KEY.search(name):
                result[name] = _REDACTED  # {"password": "..."} carries no label inside the value
            else:
                result[name] = self.convert(value, depth)
        return result


def _encoded_len(text: str) -> int:
    return len(_ENCODER.encode(text)) - 2


def _string_lengths(node: _Json, out: list[int]) -> list[int]:
    if isinstance(node, str):
        out.append(_encoded_len(node))
    elif isinstance(node, list):
        for item in node:
            _string_lengths(item, out)
    elif isinstance(node, dict):
        for item in node.values():
            _string_lengths(item, out)
    return out


def _shorten(text: str, cap: int) -> str:
    """Cut so the *encoded* string, marker included, is at most ``cap`` characters."""
    budget = max(cap - len(TRUNCATION_MARKER), 0)
    keep = min(len(text), budget)
    while keep > 0:
        encoded = _encoded_len(text[:keep])
        if encoded <= budget:
            break
        keep = min(keep - 1, keep * budget // encoded)  # escapes make a prefix grow; shrink
    return text[:keep] + TRUNCATION_MARKER


def _apply_cap(node: _Json, cap: int) -> _Json:
    if isinstance(node, str):
        return _shorten(node, cap) if _encoded_len(node) > cap else node
    if isinstance(node, list):
        return [_apply_cap(item, cap) for item in node]
    if isinstance(node, dict):
        return {key: _apply_cap(item, cap) for key, item in node.items()}
    return node


def _water_level(lengths: list[int], excess: int) -> int | None:
    """Largest cap that, applied to the longest strings only, saves at least ``excess``."""
    if excess <= 0:
        return None
    ordered = sorted(lengths, reverse=True)
    total = 0
    for count, length in enumerate(ordered, 1):
        total += length
        level = (total - excess) // count
        if count == len(ordered) or level >= ordered[count]:
            return level
    return None


def _smallest(size: int, lengths: list[int], floor: int) -> int:
    """Encoded size of a message once every string longer than ``floor`` is cut to it."""
    return size - sum(length - floor for length in lengths if length > floor)


def _as_string_array(root: _Json, limit: int) -> str:
    """Last resort when even the newest message cannot keep its shape: keep its text."""
    return _ENCODER.encode([_shorten(_ENCODER.encode(root), limit - 4)])


def _fit(roots: list[_Json], limit: int) -> str:
    """Keep the longest suffix of messages that fits once long strings are cut to the floor,
    then cut the longest strings of that suffix to one common level (water-filling).

    Messages are measured newest first and only until the budget is spent, so ten thousand
    tiny old messages cost one measurement each at most, and nothing is re-serialised.
    """
    kept = [(len(_ENCODER.encode(roots[-1])), _string_lengths(roots[-1], []))]
    floor, total = _MIN_SHORTENED, 2 + _smallest(*kept[0], _MIN_SHORTENED)
    if total > limit:  # the newest message alone is too big: its strings may shrink further
        floor = len(TRUNCATION_MARKER)
        if 2 + _smallest(*kept[0], floor) > limit:
            return _as_string_array(roots[-1], limit)
    else:
        for root in roots[-2::-1]:
            measured = (len(_ENCODER.encode(root)), _string_lengths(root, []))
            total += _smallest(*measured, floor) + 1
            if total > limit:
                break
            kept.append(measured)
    excess = 1 + sum(size + 1 for size, _ in kept) - limit
    level = _water_level([length for _, lengths in kept for length in lengths], excess)
    chosen = roots[-len(kept) :]
    text = _ENCODER.encode(chosen if level is None else [_apply_cap(r, level) for r in chosen])
    return text if len(text) <= limit else _as_string_array(roots[-1], limit)


def cap_messages(messages: Sequence[object], limit: int = DEFAULT_LIMIT) -> tuple[str, bool]:
    """Serialise chat messages to compact JSON that always parses and fits ``limit``.

    The output uses ``separators=(",", ":")`` and ``ensure_ascii=False`` so the budget is spent
    on content, not whitespace or ``\\uXXXX`` escapes.  When over the limit, the longest string
    values are shortened first (each ends with the marker, none below 64 characters), because
    one pasted document is usually the culprit; only if that cannot suffice are the oldest
    messages dropped, since the newest ones explain the response being metered.
    """
    limit = max(limit, MIN_LIMIT)
    converter = _Converter()
    if isinstance(messages, str | bytes | bytearray):  # a bare prompt, not a list of messages
        messages = [messages]
    roots = [converter.convert(item) for item in messages]
    text = _ENCODER.encode(roots)
    if len(text) <= limit:
        return text, converter.lossy
    return _fit(roots, limit), True


@attrs.frozen
class PromptCapture:
    """The four prompt-capture wire fields, already masked and capped."""

    system_prompt: str | None
    input_messages: str | None
    output_response: str | None
    truncated: bool


def capture(
    *,
    system_prompt: str | None,
    messages: Sequence[object] | None,
    output_response: str | None,
    limit: int = DEFAULT_LIMIT,
) -> PromptCapture:
    """Build the capture in one place so every provider wrapper masks and caps identically.

    Absent fields stay ``None`` (not ``""``) so the record can omit them from the wire.
    """
    none: tuple[None, bool] = (None, False)
    system = none if system_prompt is None else cap_text(system_prompt, limit)
    inputs = none if messages is None else cap_messages(messages, limit)
    output = none if output_response is None else cap_text(output_response, limit)
    return PromptCapture(system[0], inputs[0], output[0], system[1] or inputs[1] or output[1])
