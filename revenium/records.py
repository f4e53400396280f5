"""Usage records: what one paid call (or one tool call) cost, as plain immutable values.

Records are the domain model, in snake_case, with exact UTC timestamps and float milliseconds.
They know nothing of the wire: :mod:`revenium.wire` alone knows the camelCase bodies and the
endpoints. Keeping the two apart means a change of the metering API touches one module and its
golden tests.

Identity: every record gets a fresh UUID when it is created. That UUID is its
``Idempotency-Key`` for every delivery attempt, spool and replay; ``transaction_id`` is the
provider's response id when there is one (provider ids are not unique across hosts, so they
never serve as the idempotency key).

Times: ``request_time`` is wall-clock UTC at the start; durations come from the monotonic clock;
``response_time`` is derived from the two. On the wire, where times have milliseconds and
durations whole milliseconds, ``responseTime`` is computed from the other two, so that
``requestTime + requestDuration == responseTime`` holds exactly (the seed SDK's whole-second
timestamps broke that).
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, TypeAlias

import attrs

from revenium.attribution import EMPTY, Metadata
from revenium.capture import PromptCapture

if TYPE_CHECKING:
    from revenium.pricing import CostEstimate

__all__ = [
    "AudioRecord",
    "BillingUnit",
    "CompletionRecord",
    "CompletionStatus",
    "ImageRecord",
    "OperationType",
    "Record",
    "StopReason",
    "TokenClasses",
    "ToolEventRecord",
    "VideoRecord",
    "new_idempotency_key",
    "utc_now",
]


class StopReason(StrEnum):
    """Why generation stopped, in the metering API's vocabulary."""

    END = "END"
    END_SEQUENCE = "END_SEQUENCE"
    TIMEOUT = "TIMEOUT"
    TOKEN_LIMIT = "TOKEN_LIMIT"
    COST_LIMIT = "COST_LIMIT"
    COMPLETION_LIMIT = "COMPLETION_LIMIT"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"


class OperationType(StrEnum):
    """What kind of work the call did, in the metering API's vocabulary."""

    CHAT = "CHAT"
    GENERATE = "GENERATE"
    EMBED = "EMBED"
    CLASSIFY = "CLASSIFY"
    SUMMARIZE = "SUMMARIZE"
    TRANSLATE = "TRANSLATE"
    TOOL_CALL = "TOOL_CALL"
    RERANK = "RERANK"
    SEARCH = "SEARCH"
    MODERATION = "MODERATION"
    VISION = "VISION"
    TRANSFORM = "TRANSFORM"
    GUARDRAIL = "GUARDRAIL"
    AUDIO = "AUDIO"
    VIDEO = "VIDEO"
    IMAGE = "IMAGE"
    OTHER = "OTHER"


class BillingUnit(StrEnum):
    """How a media call is billed."""

    PER_IMAGE = "PER_IMAGE"
    PER_MINUTE = "PER_MINUTE"
    PER_SECOND = "PER_SECOND"
    PER_CHARACTER = "PER_CHARACTER"
    PER_TOKEN = "PER_TOKEN"
    CREDITS = "CREDITS"


class CompletionStatus(StrEnum):
    """How a long-running video job ended."""

    SUCCESS = "SUCCESS"
    PARTIAL_TIMEOUT = "PARTIAL_TIMEOUT"
    FAILED = "FAILED"


_rng: list[tuple[int, random.Random]] = []  # (pid, generator): reseeded in a forked child


def new_idempotency_key() -> str:
    """A fresh random version-4 UUID: the record's identity for every delivery attempt.

    Not ``uuid.uuid4()``: it reads ``os.urandom`` per call, which releases the GIL, and a busy
    runtime thread then keeps the caller waiting (185 us measured, against 1 us). A private
    generator seeded from ``os.urandom`` (never the global ``random``, which applications
    seed) gives 122 random bits at once; it is reseeded in a forked child, so parent and child
    never share keys.
    """
    pid = os.getpid()
    if not _rng or _rng[0][0] != pid:
        _rng[:] = [(pid, random.Random(os.urandom(32)))]  # noqa: S311 - uniqueness, not secrecy
    bits = _rng[0][1].getrandbits(128)
    bits = (bits & ~(0xF000 << 64) & ~(0xC000 << 48)) | (0x4000 << 64) | (0x8000 << 48)
    text = f"{bits:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def utc_now() -> datetime:
    """Wall-clock time, timezone-aware UTC."""
    return datetime.now(UTC)


@attrs.frozen(kw_only=True)
class _AICall:
    """Fields every AI record shares: which model, whose, when, how long, for whom."""

    model: str
    provider: str
    request_time: datetime
    request_duration_ms: float
    transaction_id: str | None = None
    model_source: str | None = None
    operation_type: OperationType | None = None
    operation_subtype: str | None = None
    # The platform's own id for the model when ``model`` is its normalized name (a Bedrock
    # inference profile or ARN, a Vertex ``@`` version): local only, the wire has no field.
    provider_model_id: str | None = None
    error_reason: str | None = None
    error_code: int | None = None
    metadata: Metadata = EMPTY
    idempotency_key: str = attrs.field(factory=new_idempotency_key)

    @property
    def response_time(self) -> datetime:
        """``request_time`` plus the measured duration."""
        return self.request_time + timedelta(milliseconds=self.request_duration_ms)


@attrs.frozen
class TokenClasses:
    """A completion's tokens in classes that do not overlap (``docs/cost-estimates.md``).

    Providers count differently (OpenAI's input includes cached reads, Anthropic's excludes
    cache traffic; Gemini's output excludes thinking): these classes are the same for all.
    """

    uncached_input: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    output: int = 0  # excluding reasoning
    reasoning: int = 0

    @property
    def input(self) -> int:
        """Every input token, cache traffic included."""
        return self.uncached_input + self.cache_read + self.cache_write_5m + self.cache_write_1h


@attrs.frozen(kw_only=True)
class CompletionRecord(_AICall):
    """A chat, text-completion or embedding call (``/v2/ai/completions``).

    Token fields carry the provider's own counts, as the Revenium server prices them: OpenAI's
    ``input_token_count`` includes cached reads, Anthropic's excludes cache tokens.
    ``estimated`` marks counts inferred for a stream abandoned before the provider reported
    usage; it stays local (ledger, statistics), since the wire has no such field.
    """

    input_token_count: int = 0
    output_token_count: int = 0
    total_token_count: int | None = None
    cache_read_token_count: int | None = None
    cache_creation_token_count: int | None = None
    cache_creation_5m_token_count: int | None = None
    cache_creation_1h_token_count: int | None = None
    reasoning_token_count: int | None = None
    stop_reason: StopReason = StopReason.END
    is_streamed: bool = False
    time_to_first_token_ms: float | None = None
    system_fingerprint: str | None = None
    prompts: PromptCapture | None = None
    estimated: bool = False
    # How this provider counts (local only): whether ``input_token_count`` includes the cache
    # reads and writes (OpenAI, Gemini: yes; Anthropic: no), and whether
    # ``output_token_count`` includes the reasoning tokens (Gemini: no).
    cache_in_input: bool = True
    reasoning_in_output: bool = True

    @property
    def cost_estimate(self) -> CostEstimate:
        """The local cost estimate (``revenium[prices]``), or why there is none; local only.

        Computed on each access (about 0.1 ms): the runtime stores it in the ledger.
        """
        from revenium.pricing import estimate  # noqa: PLC0415 - pricing imports records

        return estimate(self)

    @property
    def token_classes(self) -> TokenClasses:
        """The counts split into classes that do not overlap, each priced once (estimates)."""
        cache_read = self.cache_read_token_count or 0
        cache_write = self.cache_creation_token_count or 0
        write_1h = self.cache_creation_1h_token_count or 0
        # Writes the split does not account for are billed as 5-minute writes (the default).
        write_5m = max(self.cache_creation_5m_token_count or 0, cache_write - write_1h)
        cache_write = write_5m + write_1h
        reasoning = self.reasoning_token_count or 0
        uncached = self.input_token_count
        if self.cache_in_input:
            uncached = max(uncached - cache_read - cache_write, 0)
        output = self.output_token_count
        if self.reasoning_in_output:
            output = max(output - reasoning, 0)
        return TokenClasses(uncached, cache_read, write_5m, write_1h, output, reasoning)

    @property
    def completion_start_time(self) -> datetime:
        """When the first token arrived (the response time for a non-streamed call)."""
        if self.time_to_first_token_ms is None:
            return self.response_time
        return self.request_time + timedelta(milliseconds=self.time_to_first_token_ms)


@attrs.frozen(kw_only=True)
class ImageRecord(_AICall):
    """An image generation or edit (``/v2/ai/images``)."""

    requested_image_count: int = 0
    actual_image_count: int = 0
    resolution: str | None = None
    quality: str | None = None
    style: str | None = None
    format: str | None = None
    aspect_ratio: str | None = None
    revised_prompt_provided: bool | None = None
    source_image_provided: bool | None = None
    source_transaction_id: str | None = None
    billing_unit: BillingUnit | None = None


@attrs.frozen(kw_only=True)
class VideoRecord(_AICall):
    """A video generation job (``/v2/ai/video``)."""

    duration_seconds: float = 0.0
    requested_duration_seconds: float | None = None
    credits_consumed: float | None = None
    credit_rate: float | None = None
    fps: int | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    video_job_id: str | None = None
    async_operation: bool | None = None
    completion_status: CompletionStatus | None = None
    billing_unit: BillingUnit | None = None


@attrs.frozen(kw_only=True)
class AudioRecord(_AICall):
    """A speech, transcription or translation call (``/v2/ai/audio``)."""

    duration_seconds: float | None = None
    character_count: int | None = None
    input_token_count: int | None = None
    output_token_count: int | None = None
    input_audio_token_count: int | None = None
    output_audio_token_count: int | None = None
    language: str | None = None
    voice: str | None = None
    audio_format: str | None = None
    quality: str | None = None
    speed: float | None = None
    sample_rate: int | None = None
    response_format: str | None = None
    source_language: str | None = None
    target_language: str | None = None
    is_realtime: bool | None = None
    billing_unit: BillingUnit | None = None


@attrs.frozen(kw_only=True)
class ToolEventRecord:
    """One call of a user's tool (``/v2/tool/events``): duration, outcome, free-form payload.

    ``usage_metadata`` is the seed's free-form payload (``{"records": 42}``), passed through as
    given; business attribution comes from ``metadata`` like every other record.
    """

    tool_id: str
    operation: str
    timestamp: datetime
    duration_ms: float
    success: bool
    agent: str | None = None
    error_message: str | None = None
    usage_metadata: object = None
    workflow_id: str | None = None
    transaction_id: str | None = None
    metadata: Metadata = EMPTY
    idempotency_key: str = attrs.field(factory=new_idempotency_key)


Record: TypeAlias = CompletionRecord | ImageRecord | VideoRecord | AudioRecord | ToolEventRecord
"""Any record the SDK produces."""
