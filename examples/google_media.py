"""Meter Google embeddings, Imagen images and Veo videos made with ``google-genai``.

Through a wrapped ``genai.Client`` on Vertex AI (express mode here: ``vertexai=True`` with an
API key; Imagen and Veo are Vertex surfaces in this SDK version):

1. ``embed_content``: an EMBED record with the tokens Vertex reports (the Gemini API reports
   none for embeddings: such records count the call with 0 tokens);
2. ``generate_images``: an image record, requested and returned counts (a safety filter may
   return fewer), aspect ratio and format from the config;
3. ``generate_videos``: a long-running operation. Nothing is recorded when it is submitted;
   the first ``operations.get`` that sees it done makes one video record (job id, number of
   videos, the duration the config asked for), with the submission's metadata. Polling again
   records nothing more.

The client points at an offline stand-in of Google's APIs on a loopback port; with real
credentials drop ``http_options``.

Run: python examples/google_media.py
"""

from __future__ import annotations

import warnings

from google import genai
from google.genai import types

import revenium
from revenium.providers._openai_standin import StandInServer

# google-genai marks generate_images experimental; this example knows
warnings.filterwarnings("ignore", message=".*generate_images.*")


def media_calls(client: genai.Client) -> None:
    with revenium.session(organization_name="Acme Corp", product_name="catalogue"):
        embedding = client.models.embed_content(
            model="text-embedding-005", contents=["refund policy", "two charges in March"]
        )
        print(f"1. embed_content:     {len(embedding.embeddings or [])} vectors")

        images = client.models.generate_images(
            model="imagen-4.0-generate-001",
            prompt="A watercolour of a lighthouse",
            config=types.GenerateImagesConfig(
                number_of_images=2, aspect_ratio="16:9", output_mime_type="image/png"
            ),
        )
        print(f"2. generate_images:   {len(images.generated_images or [])} images")

        operation = client.models.generate_videos(
            model="veo-3.0-generate-001",
            source=types.GenerateVideosSource(prompt="A lighthouse at dusk, waves rolling in"),
            config=types.GenerateVideosConfig(
                number_of_videos=1, duration_seconds=6, aspect_ratio="16:9", resolution="720p"
            ),
        )
        print(f"3. generate_videos:   submitted {operation.name}")

    # Poll outside the session: the record still carries the submission's metadata.
    polls = 0
    while not operation.done:
        polls += 1
        operation = client.operations.get(operation)  # the real API needs a sleep between polls
    client.operations.get(operation)  # polled again once done: no second record
    videos = operation.response.generated_videos if operation.response else []
    print(f"   done after {polls} polls: {len(videos or [])} video(s)")


def main() -> None:
    with revenium.testing.capture() as captured, StandInServer() as server:
        client = revenium.wrap(
            genai.Client(
                vertexai=True,
                api_key="vertex-demo-key",
                http_options=types.HttpOptions(base_url=server.origin),
            )
        )
        media_calls(client)

    print(f"\n{len(captured.records)} records:")
    for record in captured.records:
        kind = type(record).__name__
        org = record.metadata.organization_name
        if isinstance(record, revenium.CompletionRecord):
            detail = f"input tokens={record.input_token_count}"
        elif isinstance(record, revenium.ImageRecord):
            detail = (
                f"requested={record.requested_image_count} returned={record.actual_image_count} "
                f"aspect={record.aspect_ratio} format={record.format}"
            )
        elif isinstance(record, revenium.VideoRecord):
            detail = (
                f"job={record.video_job_id} seconds={record.duration_seconds} "
                f"requested={record.requested_duration_seconds} status={record.completion_status}"
            )
        else:
            detail = ""
        print(f"  {kind:<16} provider={record.provider} model={record.model} org={org} {detail}")


if __name__ == "__main__":
    main()
