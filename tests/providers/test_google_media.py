"""google-genai's embeddings, images and videos, sync and ``client.aio``: the exact records.

The real SDK runs over an in-process transport backed by the Google stand-in; the expected
numbers come from its documented rules (``_google_standin``). Videos are long-running
operations, remembered at submission and metered once, when a poll first sees them done
(``revenium.operations``): every test starts with an empty registry, as a new process would.
"""

from __future__ import annotations

import gc
import logging
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from google.genai import errors, types
from google_fixtures import (
    GEMINI_URL,
    GOOGLE_ENV,
    MODES,
    Handler,
    Recorded,
    client_for,
    make_handler,
    recording,
    tokens,
)

import revenium
from revenium import enforcement, operations
from revenium.errors import BudgetExceededError
from revenium.providers._google_standin import DEFAULT_IMAGES, IMAGE_BYTES
from revenium.records import (
    BillingUnit,
    CompletionRecord,
    CompletionStatus,
    ImageRecord,
    OperationType,
    StopReason,
    VideoRecord,
)
from revenium.rules import parse_feed
from revenium.testing import Capture

if TYPE_CHECKING:
    from google import genai

pytestmark = pytest.mark.filterwarnings("ignore::google.genai._common.ExperimentalWarning")

IMAGEN = "imagen-4.0-generate-001"
IMAGEN_EDIT = "imagen-3.0-capability-001"
IMAGEN_UPSCALE = "imagen-4.0-upscale-preview"
VEO = "veo-3.0-generate-001"
VEO_SECONDS = 8  # Veo's default clip length, for a job that did not ask for one
VERTEX_MODES = ["vertex", "express"]  # images and video generation are Vertex-only in the SDK
TEXTS = ["hello world", "a much longer sentence to embed"]


@pytest.fixture(autouse=True)
def _no_google_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK reads its mode, keys and API version from the environment."""
    for name in GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty operations registry, as in a new process (the stand-in's operation names
    repeat from test to test)."""
    monkeypatch.setattr(operations, "_submitted", OrderedDict())
    monkeypatch.setattr(operations, "_taken", OrderedDict())


@pytest.fixture(params=VERTEX_MODES)
def vertex_mode(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=["sync", "aio"])
def colour(request: pytest.FixtureRequest) -> str:
    return request.param  # type: ignore[no-any-return]


def method(client: genai.Client, colour: str, path: str) -> Callable[..., Awaitable[Any]]:
    """``client.<path>`` (or ``client.aio.<path>``), awaitable either way."""
    owner: Any = client.aio if colour == "aio" else client
    for part in path.split("."):
        owner = getattr(owner, part)
    if colour == "aio":
        return owner  # type: ignore[no-any-return]
    sync = owner

    async def call(*args: Any, **kw: Any) -> Any:
        return sync(*args, **kw)

    return call


def block_every_call() -> None:
    """Cost controls on, with one breached rule that matches every call (installed offline)."""
    settings = revenium.configure(
        circuit_breaker_enabled=True, team_id="team-1", cb_poll_interval_seconds=3600
    )
    enforcement._adopt(settings)
    feed = parse_feed({"rules": [{"ruleId": 1, "name": "Everything", "breached": True}]})
    enforcement._install(enforcement.Snapshot(feed, 0.0, "test"))
    enforcement._state.poller_alive = True  # no poller: nothing to fetch


# -- embeddings ----------------------------------------------------------------------------------


def expect_embedding(record: CompletionRecord, model: str, input_tokens: int) -> None:
    assert (record.model, record.provider, record.model_source) == (model, "Google", "GOOGLE")
    assert record.provider_model_id is None
    assert (record.operation_type, record.stop_reason) == (OperationType.EMBED, StopReason.END)
    assert (record.input_token_count, record.output_token_count) == (input_tokens, 0)
    assert record.total_token_count == input_tokens
    assert (record.cache_read_token_count, record.reasoning_token_count) == (None, None)
    assert (record.is_streamed, record.transaction_id) == (False, None)
    assert (record.error_code, record.error_reason) == (None, None)


async def test_gemini_api_embeddings_report_no_tokens(colour: str, captured: Capture) -> None:
    """The Gemini API's embed answers carry no usage: 0 input tokens, as the docs say."""
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen)))
    embed = method(client, colour, "models.embed_content")
    one = await embed(model="gemini-embedding-001", contents=TEXTS[0])
    assert one.usage_metadata is None
    await embed(model="gemini-embedding-001", contents=TEXTS)
    await embed(model="text-embedding-004", contents=TEXTS)
    assert len(seen) == 3
    assert [r.url.rpartition(":")[2] for r in seen] == ["batchEmbedContents"] * 3
    models = ["gemini-embedding-001", "gemini-embedding-001", "text-embedding-004"]
    assert len(captured.records) == 3
    for record, model in zip(captured.completions, models, strict=True):
        expect_embedding(record, model, 0)


async def test_vertex_embeddings_count_their_input(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(vertex_mode, recording(seen)))
    embed = method(client, colour, "models.embed_content")
    # gemini-embedding-*: :embedContent (one content) or :batchEmbedContents, usageMetadata
    one = await embed(model="gemini-embedding-001", contents=TEXTS[0])
    assert one.usage_metadata.prompt_token_count == tokens(TEXTS[0])
    await embed(model="gemini-embedding-001", contents=TEXTS)
    # text-embedding-*: :predict, each embedding's statistics.token_count
    predicted = await embed(model="text-embedding-005", contents=TEXTS)
    assert predicted.usage_metadata is None
    assert [r.url.rpartition(":")[2] for r in seen] == [
        "embedContent",
        "batchEmbedContents",
        "predict",
    ]
    every = sum(tokens(t) for t in TEXTS)
    expected = [
        ("gemini-embedding-001", tokens(TEXTS[0])),
        ("gemini-embedding-001", every),
        ("text-embedding-005", every),
    ]
    assert len(captured.records) == 3
    for record, (model, input_tokens) in zip(captured.completions, expected, strict=True):
        expect_embedding(record, model, input_tokens)


async def test_a_failed_embedding_is_one_error_record(colour: str, captured: Capture) -> None:
    client = revenium.wrap(client_for("vertex"))
    embed = method(client, colour, "models.embed_content")
    with pytest.raises(errors.ClientError) as raised:
        await embed(model="fail-403", contents=TEXTS[0])
    assert len(captured.records) == 1
    (record,) = captured.completions
    assert (record.model, record.operation_type) == ("fail-403", OperationType.EMBED)
    assert (record.stop_reason, record.error_code) == (StopReason.ERROR, 403)
    assert record.error_reason == f"ClientError: {raised.value.message}"
    assert (record.input_token_count, record.output_token_count) == (0, 0)


def test_embedding_prompts_are_captured_without_output(captured: Capture) -> None:
    revenium.configure(capture_prompts=True)
    revenium.wrap(client_for("express")).models.embed_content(
        model="text-embedding-005", contents=TEXTS
    )
    (record,) = captured.completions
    assert record.prompts is not None
    assert record.prompts.input_messages is not None
    assert all(t in record.prompts.input_messages for t in TEXTS)
    assert record.prompts.output_response is None


# -- images --------------------------------------------------------------------------------------


def expect_image(
    record: ImageRecord,
    *,
    requested: int,
    actual: int,
    model: str = IMAGEN,
    subtype: str = "generation",
    aspect_ratio: str | None = None,
    image_format: str | None = None,
    resolution: str | None = None,
) -> None:
    assert (record.model, record.provider, record.model_source) == (model, "Google", "GOOGLE")
    assert (record.operation_type, record.operation_subtype) == (OperationType.IMAGE, subtype)
    assert (record.requested_image_count, record.actual_image_count) == (requested, actual)
    assert (record.aspect_ratio, record.format, record.resolution) == (
        aspect_ratio,
        image_format,
        resolution,
    )
    assert record.billing_unit is BillingUnit.PER_IMAGE
    assert record.source_image_provided is (subtype != "generation")
    assert record.request_duration_ms > 0
    if actual:
        assert (record.error_code, record.error_reason) == (None, None)
        assert record.revised_prompt_provided is False


async def test_generated_images_are_counted(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(vertex_mode))
    generate = method(client, colour, "models.generate_images")
    config = types.GenerateImagesConfig(
        number_of_images=2, aspect_ratio="16:9", output_mime_type="image/jpeg", image_size="2K"
    )
    response = await generate(model=IMAGEN, prompt="a cat", config=config)
    assert [g.image.image_bytes for g in response.generated_images] == [IMAGE_BYTES] * 2
    (record,) = captured.media
    assert isinstance(record, ImageRecord)
    expect_image(
        record,
        requested=2,
        actual=2,
        aspect_ratio="16:9",
        image_format="image/jpeg",
        resolution="2K",
    )
    captured.clear()
    # a config given as a dict reads the same
    await generate(model=IMAGEN, prompt="a cat", config={"number_of_images": 1})
    (record,) = captured.media
    assert isinstance(record, ImageRecord)
    expect_image(record, requested=1, actual=1)


async def test_unset_number_of_images_is_what_came_back(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    """Without ``number_of_images`` the API makes its default number (the stand-in: 4) and
    the record's requested count is the number of entries returned."""
    client = revenium.wrap(client_for(vertex_mode))
    generate = method(client, colour, "models.generate_images")
    response = await generate(model=IMAGEN, prompt="a cat")
    assert len(response.generated_images) == DEFAULT_IMAGES
    (record,) = captured.media
    assert isinstance(record, ImageRecord)
    expect_image(record, requested=DEFAULT_IMAGES, actual=DEFAULT_IMAGES)


async def test_a_camel_case_dict_config_reads_the_same(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    """The SDK accepts a dict config in camelCase, as the API spells it."""
    client = revenium.wrap(client_for(vertex_mode))
    generate = method(client, colour, "models.generate_images")
    config = {
        "numberOfImages": 2,
        "aspectRatio": "16:9",
        "outputMimeType": "image/jpeg",
        "imageSize": "2K",
    }
    response = await generate(model=IMAGEN, prompt="a cat", config=config)
    assert len(response.generated_images) == 2
    (record,) = captured.media
    assert isinstance(record, ImageRecord)
    expect_image(
        record,
        requested=2,
        actual=2,
        aspect_ratio="16:9",
        image_format="image/jpeg",
        resolution="2K",
    )


@pytest.mark.parametrize("rai_reason", [False, True])
async def test_a_filtered_image_is_not_counted(
    vertex_mode: str, colour: str, rai_reason: bool, captured: Capture
) -> None:
    """A "blocked" prompt filters one image: left out, or (with RAI reasons) an empty
    ``Image`` carrying the reason; neither is an image delivered."""
    client = revenium.wrap(client_for(vertex_mode))
    generate = method(client, colour, "models.generate_images")
    asked = 3
    config = types.GenerateImagesConfig(number_of_images=asked, include_rai_reason=rai_reason)
    response = await generate(model=IMAGEN, prompt="blocked cat", config=config)
    assert len(response.generated_images) == (asked if rai_reason else asked - 1)
    (record,) = captured.media
    assert isinstance(record, ImageRecord)
    expect_image(record, requested=asked, actual=asked - 1)


async def test_a_failed_image_generation_is_a_record_without_images(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(vertex_mode))
    generate = method(client, colour, "models.generate_images")
    config = types.GenerateImagesConfig(number_of_images=2, aspect_ratio="1:1")
    with pytest.raises(errors.ClientError) as raised:
        await generate(model="fail-429", prompt="a cat", config=config)
    (record,) = captured.media
    assert isinstance(record, ImageRecord)
    expect_image(record, requested=2, actual=0, model="fail-429", aspect_ratio="1:1")
    assert record.error_code == 429
    assert record.error_reason == f"ClientError: {raised.value.message}"


def _sample_count(request: Recorded) -> int:
    """How many images the stand-in makes for a ``:predict`` request (its rule)."""
    count = (request.body.get("parameters") or {}).get("sampleCount")
    return count if isinstance(count, int) and count > 0 else DEFAULT_IMAGES


async def test_edited_and_upscaled_images(vertex_mode: str, colour: str, captured: Capture) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for(vertex_mode, recording(seen)))
    source = types.Image(image_bytes=IMAGE_BYTES, mime_type="image/png")
    edit = method(client, colour, "models.edit_image")
    reference = types.RawReferenceImage(reference_id=1, reference_image=source)
    edited = await edit(model=IMAGEN_EDIT, prompt="add a hat", reference_images=[reference])
    made = _sample_count(seen[-1])
    assert len(edited.generated_images) == made
    (record,) = captured.media
    assert isinstance(record, ImageRecord)
    expect_image(record, requested=made, actual=made, model=IMAGEN_EDIT, subtype="edit")
    captured.clear()

    upscale = method(client, colour, "models.upscale_image")
    upscaled = await upscale(model=IMAGEN_UPSCALE, image=source, upscale_factor="x2")
    made = _sample_count(seen[-1])
    assert len(upscaled.generated_images) == made
    (record,) = captured.media
    assert isinstance(record, ImageRecord)
    expect_image(record, requested=made, actual=made, model=IMAGEN_UPSCALE, subtype="upscale")


# -- videos --------------------------------------------------------------------------------------


def expect_video(
    record: VideoRecord,
    name: str,
    *,
    videos: int = 1,
    asked: int | None = None,
    config: types.GenerateVideosConfig | None = None,
    failed: bool = False,
) -> None:
    """A video job's record: ``name`` its operation, ``videos`` made of ``asked`` seconds."""
    assert (record.model, record.provider, record.model_source) == (VEO, "Google", "GOOGLE")
    assert record.provider_model_id is None
    assert record.operation_type is OperationType.VIDEO
    assert record.transaction_id == record.video_job_id == name
    assert record.requested_duration_seconds == (float(asked) if asked else None)
    expected_seconds = 0.0 if failed else float(videos * (asked or VEO_SECONDS))
    assert record.duration_seconds == expected_seconds
    status = CompletionStatus.FAILED if failed else CompletionStatus.SUCCESS
    assert record.completion_status is status
    assert (record.async_operation, record.billing_unit) == (True, BillingUnit.PER_SECOND)
    assert (record.resolution, record.aspect_ratio, record.fps) == (
        (config.resolution, config.aspect_ratio, config.fps) if config else (None, None, None)
    )
    assert uuid.UUID(record.idempotency_key).version == 5  # derived from the operation's name
    assert record.error_code is None
    if not failed:
        assert record.error_reason is None


VIDEO_CONFIG = types.GenerateVideosConfig(
    duration_seconds=6, number_of_videos=2, resolution="1080p", aspect_ratio="16:9", fps=24
)


async def test_a_video_is_metered_once_when_first_seen_done(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(vertex_mode))
    submit = method(client, colour, "models.generate_videos")
    poll = method(client, colour, "operations.get")
    before = datetime.now(UTC)
    with revenium.session(organization_name="A"):
        operation = await submit(
            model=VEO, source=types.GenerateVideosSource(prompt="a cat"), config=VIDEO_CONFIG
        )
    submitted = datetime.now(UTC)
    assert operation.name
    assert captured.records == []  # nothing is paid at submission
    running = await poll(operation)
    assert not running.done
    assert captured.records == []
    done = await poll(operation)  # outside the session: the submission's metadata counts
    assert done.done
    assert done.result
    assert done.result.generated_videos
    assert len(done.result.generated_videos) == VIDEO_CONFIG.number_of_videos
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(
        record,
        operation.name,
        videos=len(done.result.generated_videos),
        asked=VIDEO_CONFIG.duration_seconds,
        config=VIDEO_CONFIG,
    )
    assert record.metadata.organization_name == "A"
    assert before <= record.request_time <= submitted  # the job's start: its submission
    assert record.response_time >= submitted
    await poll(done)  # polled again: still one record
    assert len(captured.records) == 1


async def test_a_camel_case_dict_video_config_reads_the_same(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(vertex_mode))
    submit = method(client, colour, "models.generate_videos")
    poll = method(client, colour, "operations.get")
    config = {
        "durationSeconds": VIDEO_CONFIG.duration_seconds,
        "numberOfVideos": VIDEO_CONFIG.number_of_videos,
        "resolution": VIDEO_CONFIG.resolution,
        "aspectRatio": VIDEO_CONFIG.aspect_ratio,
        "fps": VIDEO_CONFIG.fps,
    }
    operation = await submit(
        model=VEO, source=types.GenerateVideosSource(prompt="a cat"), config=config
    )
    await poll(operation)
    done = await poll(operation)
    assert len(done.result.generated_videos) == VIDEO_CONFIG.number_of_videos
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(
        record,
        operation.name,
        videos=len(done.result.generated_videos),
        asked=VIDEO_CONFIG.duration_seconds,
        config=VIDEO_CONFIG,
    )


@pytest.mark.parametrize(
    "given_as",
    [
        "source",
        pytest.param(
            "arguments",  # the older form, still accepted
            marks=pytest.mark.filterwarnings(
                "ignore:The generate_videos method with prompt/image/video:DeprecationWarning"
            ),
        ),
    ],
)
async def test_a_remembered_submission_keeps_none_of_the_callers_media(
    given_as: str, colour: str, captured: Capture
) -> None:
    """A submission is remembered until a poll sees its job done (up to ``operations.LIMIT``
    of them): the caller's input image and video, often megabytes, are not kept with it."""
    client = revenium.wrap(client_for("vertex"))
    submit = method(client, colour, "models.generate_videos")
    image = types.Image(image_bytes=IMAGE_BYTES, mime_type="image/png")
    video = types.Video(video_bytes=b"\x00\x00\x00\x18ftypmp42", mime_type="video/mp4")
    inputs = [weakref.ref(image), weakref.ref(video)]
    if given_as == "source":
        source = types.GenerateVideosSource(prompt="a cat", image=image)
        operation = await submit(model=VEO, source=source, config=VIDEO_CONFIG)
        extended = await submit(
            model=VEO, source=types.GenerateVideosSource(video=video), config=VIDEO_CONFIG
        )
        del source
    else:
        operation = await submit(model=VEO, prompt="a cat", image=image, config=VIDEO_CONFIG)
        extended = await submit(model=VEO, video=video, config=VIDEO_CONFIG)
    remembered = [operation.name, extended.name]
    assert all(name in operations._submitted for name in remembered)
    assert all(ref() is not None for ref in inputs)  # still the caller's
    del image, video
    gc.collect()
    assert [ref() for ref in inputs] == [None, None]  # the registry kept neither
    assert all(name in operations._submitted for name in remembered)
    # what the record needs was kept
    poll = method(client, colour, "operations.get")
    await poll(operation)
    done = await poll(operation)
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(
        record,
        operation.name,
        videos=len(done.result.generated_videos),
        asked=VIDEO_CONFIG.duration_seconds,
        config=VIDEO_CONFIG,
    )


async def test_a_video_without_a_config_gets_the_default_length(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(vertex_mode))
    poll = method(client, colour, "operations.get")
    submit = method(client, colour, "models.generate_videos")
    operation = await submit(model=VEO, source=types.GenerateVideosSource(prompt="a cat"))
    await poll(operation)
    done = await poll(operation)
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(record, operation.name, videos=len(done.result.generated_videos))


async def test_a_job_done_at_submission_is_metered_then(colour: str, captured: Capture) -> None:
    """An operation returned done by ``generate_videos`` itself is metered at once; later
    polls of it add nothing."""
    inner = make_handler()

    def done_at_once(request: httpx2.Request) -> httpx2.Response:
        response = inner(request)
        if not request.url.path.endswith(":predictLongRunning"):
            return response
        response.read()
        video = {"gcsUri": "gs://standin-bucket/now.mp4", "mimeType": "video/mp4"}
        body = {"name": response.json()["name"], "done": True, "response": {"videos": [video]}}
        return httpx2.Response(200, json=body)

    client = revenium.wrap(client_for("vertex", done_at_once))
    submit = method(client, colour, "models.generate_videos")
    poll = method(client, colour, "operations.get")
    config = types.GenerateVideosConfig(duration_seconds=4)
    with revenium.session(organization_name="A"):
        operation = await submit(
            model=VEO, source=types.GenerateVideosSource(prompt="a cat"), config=config
        )
    assert operation.done
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(record, operation.name, videos=1, asked=4)
    assert record.metadata.organization_name == "A"
    await poll(operation)  # the stand-in: still running
    await poll(operation)  # done again
    assert len(captured.records) == 1


async def test_a_failed_video_job(vertex_mode: str, colour: str, captured: Capture) -> None:
    client = revenium.wrap(client_for(vertex_mode))
    submit = method(client, colour, "models.generate_videos")
    poll = method(client, colour, "operations.get")
    config = types.GenerateVideosConfig(duration_seconds=6)
    source = types.GenerateVideosSource(prompt="this will fail")
    operation = await submit(model=VEO, source=source, config=config)
    await poll(operation)
    broken = await poll(operation)
    assert broken.done
    assert broken.error
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(record, operation.name, asked=6, failed=True)
    assert record.error_reason is not None
    assert broken.error["message"] in record.error_reason
    assert str(broken.error["code"]) in record.error_reason


async def test_a_rejected_submission_is_a_failed_job(
    vertex_mode: str, colour: str, captured: Capture
) -> None:
    client = revenium.wrap(client_for(vertex_mode))
    submit = method(client, colour, "models.generate_videos")
    config = types.GenerateVideosConfig(duration_seconds=6)
    with pytest.raises(errors.ClientError) as raised:
        await submit(model="fail-400", source=types.GenerateVideosSource(prompt="x"), config=config)
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    assert (record.model, record.operation_type) == ("fail-400", OperationType.VIDEO)
    assert (record.completion_status, record.duration_seconds) == (CompletionStatus.FAILED, 0.0)
    assert record.requested_duration_seconds == 6.0
    assert (record.error_code, record.error_reason) == (
        400,
        f"ClientError: {raised.value.message}",
    )
    assert (record.video_job_id, record.async_operation) == (None, True)


async def test_a_failed_poll_records_nothing(colour: str, captured: Capture) -> None:
    client = revenium.wrap(client_for("vertex"))
    poll = method(client, colour, "operations.get")
    submit = method(client, colour, "models.generate_videos")
    operation = await submit(model=VEO, source=types.GenerateVideosSource(prompt="a cat"))
    unknown = types.GenerateVideosOperation(name=f"{operation.name}-unknown")
    with pytest.raises(errors.ClientError):
        await poll(unknown)
    assert captured.records == []


def _start_gemini_video(handler: Handler, videos: int) -> str:
    """A Veo job started on the Gemini API without the SDK (which refuses ``generate_videos``
    there): as another program would, leaving this process only the polls."""
    body = {"instances": [{"prompt": "a cat"}], "parameters": {"sampleCount": videos}}
    start = handler(httpx2.Request("POST", f"{GEMINI_URL}/{VEO}:predictLongRunning", json=body))
    start.read()
    name = start.json()["name"]
    assert isinstance(name, str)
    return name


def video_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "revenium"
        and r.levelno == logging.WARNING
        and "video operation" in r.getMessage()
    ]


async def test_gemini_api_polls_meter_an_operation_started_elsewhere(
    colour: str, captured: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    handler = make_handler()
    videos = 2
    name = _start_gemini_video(handler, videos)
    client = revenium.wrap(client_for("gemini", handler))
    poll = method(client, colour, "operations.get")
    operation = types.GenerateVideosOperation(name=name)
    await poll(operation)
    with revenium.session(organization_name="B"):
        done = await poll(operation)
        await poll(operation)
    assert done.result
    assert done.result.generated_videos
    assert len(done.result.generated_videos) == videos
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(record, name, videos=videos)  # the model read from the operation's name
    assert record.metadata.organization_name == "B"  # no submission known: the poll's context
    (warning,) = video_warnings(caplog)
    assert name in warning.getMessage()


async def test_an_operation_this_process_did_not_submit_is_metered_once_with_a_warning(
    colour: str,
    captured: Capture,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = revenium.wrap(client_for("vertex"))
    submit = method(client, colour, "models.generate_videos")
    poll = method(client, colour, "operations.get")
    source = types.GenerateVideosSource(prompt="a cat")
    operation = await submit(model=VEO, source=source, config=VIDEO_CONFIG)
    monkeypatch.setattr(operations, "_submitted", OrderedDict())  # another process's job
    await poll(operation)
    done = await poll(operation)
    await poll(operation)
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    # the request is unknown here: Veo's default length for each video made
    expect_video(record, operation.name, videos=len(done.result.generated_videos))
    assert len(video_warnings(caplog)) == 1


FILE_SEARCH_UPLOAD = "fileSearchStores/my-store-123/upload/operations/op-456"


def _file_search_upload(request: httpx2.Request) -> httpx2.Response:
    """The Gemini API's answer to a poll of a File Search upload (the stand-in has none)."""
    assert request.method == "GET"
    assert FILE_SEARCH_UPLOAD in str(request.url)
    kind = "type.googleapis.com/google.ai.generativelanguage.v1main.UploadToFileSearchStoreResponse"
    document = "fileSearchStores/my-store-123/documents/doc-1"
    response = {"@type": kind, "documentName": document}
    return httpx2.Response(
        200, json={"name": FILE_SEARCH_UPLOAD, "done": True, "response": response}
    )


async def test_polling_another_kind_of_operation_records_nothing(
    colour: str, captured: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    """``operations.get`` polls every long-running operation (File Search uploads and
    imports too): only a video job is a video."""
    client = revenium.wrap(client_for("gemini", _file_search_upload))
    poll = method(client, colour, "operations.get")
    operation = types.UploadToFileSearchStoreOperation(name=FILE_SEARCH_UPLOAD, done=False)
    done = await poll(operation)
    assert done.done
    assert done.response
    assert done.response.document_name == "fileSearchStores/my-store-123/documents/doc-1"
    await poll(done)
    assert captured.records == []
    assert video_warnings(caplog) == []


def test_the_idempotency_key_is_the_same_in_every_process(
    vertex_mode: str, captured: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = make_handler()
    first = revenium.wrap(client_for(vertex_mode, handler))
    source = types.GenerateVideosSource(prompt="a cat")
    one = first.models.generate_videos(model=VEO, source=source)
    two = first.models.generate_videos(model=VEO, source=source)
    for operation in (one, two, one, two):
        first.operations.get(operation)
    keys = {r.transaction_id: r.idempotency_key for r in captured.media}
    assert len(keys) == 2
    assert keys[one.name] != keys[two.name]
    captured.clear()
    # a second process: an empty registry and a client of its own, polling the same job
    monkeypatch.setattr(operations, "_submitted", OrderedDict())
    monkeypatch.setattr(operations, "_taken", OrderedDict())
    second = revenium.wrap(client_for(vertex_mode, handler))
    second.operations.get(one)
    (again,) = captured.media
    assert (again.transaction_id, again.idempotency_key) == (one.name, keys[one.name])


async def test_polls_are_never_blocked_by_cost_controls(colour: str, captured: Capture) -> None:
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("vertex", recording(seen)))
    submit = method(client, colour, "models.generate_videos")
    poll = method(client, colour, "operations.get")
    source = types.GenerateVideosSource(prompt="a cat")
    operation = await submit(model=VEO, source=source)
    block_every_call()
    with pytest.raises(BudgetExceededError):  # a new job is a paid call: refused
        await submit(model=VEO, source=source)
    sent = len(seen)
    await poll(operation)  # a poll costs nothing: never refused
    done = await poll(operation)
    assert done.done
    assert len(seen) == sent + 2
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(record, operation.name, videos=len(done.result.generated_videos))


async def test_sync_submission_and_async_polls_share_the_registry(captured: Capture) -> None:
    client = revenium.wrap(client_for("express"))
    with revenium.session(organization_name="A"):
        operation = client.models.generate_videos(
            model=VEO, source=types.GenerateVideosSource(prompt="a cat"), config=VIDEO_CONFIG
        )
    await client.aio.operations.get(operation)
    done = await client.aio.operations.get(operation)
    (record,) = captured.media
    assert isinstance(record, VideoRecord)
    expect_video(
        record,
        operation.name,
        videos=len(done.result.generated_videos),
        asked=VIDEO_CONFIG.duration_seconds,
        config=VIDEO_CONFIG,
    )
    assert record.metadata.organization_name == "A"


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_labels_media_as_google(mode: str, captured: Capture) -> None:
    client = revenium.wrap(client_for(mode))
    client.models.embed_content(model="text-embedding-005", contents="x")
    assert [(r.provider, r.model_source) for r in captured.completions] == [("Google", "GOOGLE")]


def test_a_call_the_sdk_refuses_before_sending_makes_no_record(captured: Capture) -> None:
    """google-genai 3.x serves Imagen and Veo on Vertex only: on the Gemini API it raises
    ``ValueError`` before any request. Nothing was sent or billed: no record. The caller gets
    the SDK's own error."""
    seen: list[Recorded] = []
    client = revenium.wrap(client_for("gemini", recording(seen)))
    with pytest.raises(ValueError, match="only supported") as refused_images:
        client.models.generate_images(model="imagen-4.0-generate-001", prompt="a lighthouse")
    source = types.GenerateVideosSource(prompt="a lighthouse")
    with pytest.raises(ValueError, match="only supported"):
        client.models.generate_videos(model="veo-3.0-generate-001", source=source)
    assert type(refused_images.value) is ValueError
    revenium.flush_sync(timeout=5)
    assert seen == []
    assert captured.records == []
