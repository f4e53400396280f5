"""Meter OpenAI embeddings, image generation and audio (speech and transcription).

Each call is one record of its own kind, sent to its own endpoint: embeddings are completion
records (operation EMBED, input tokens only), images are image records (billed per image),
speech is an audio record billed per character of the input text (made from the request, so
even the raw-bytes ``with_streaming_response`` surface is metered), and a transcription is an
audio record with the duration or the tokens the response reports. The script prints the JSON
body each record would be sent as.

Run: python examples/openai_embeddings_images_audio.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import openai

import revenium
from revenium.providers._openai_standin import StandInServer

SHOWN = (
    "operationType", "operationSubtype", "model", "inputTokenCount", "outputTokenCount",
    "requestedImageCount", "actualImageCount", "resolution", "characterCount", "voice",
    "durationSeconds", "billingUnit", "organizationName",
)  # fmt: skip


def calls(client: openai.OpenAI, scratch: Path) -> None:
    vectors = client.embeddings.create(
        model="text-embedding-3-small", input=["refund policy", "invoice disputes"]
    )
    print(f"embeddings: {len(vectors.data)} vectors of {len(vectors.data[0].embedding)}")

    images = client.images.generate(model="dall-e-3", prompt="a lighthouse", size="1024x1024")
    print(f"images:     {len(images.data)} image(s)")

    speech = client.audio.speech.create(
        model="tts-1", voice="alloy", input="Your refund is on its way."
    )
    audio_file = scratch / "speech.mp3"
    audio_file.write_bytes(speech.content)
    print(f"speech:     {len(speech.content)} bytes")

    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="nova", input="Thank you for calling."
    ) as response:
        response.stream_to_file(scratch / "streamed.mp3")
    print("speech:     streamed to a file")

    with audio_file.open("rb") as file:
        transcript = client.audio.transcriptions.create(model="whisper-1", file=file)
    print(f"transcript: {transcript.text!r}")


def main() -> None:
    with (
        revenium.testing.capture() as captured,
        StandInServer() as server,
        tempfile.TemporaryDirectory() as scratch,
    ):
        client = revenium.wrap(openai.OpenAI(base_url=server.base_url, api_key="sk-demo"))
        with revenium.session(organization_name="Acme Corp"):
            calls(client, Path(scratch))
    print(f"\n{len(captured.records)} records:")
    for body in captured.bodies():
        print("  " + json.dumps({k: body[k] for k in SHOWN if k in body}))


if __name__ == "__main__":
    main()
