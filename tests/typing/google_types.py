"""Checked by mypy and pyright (``nox -s typecheck``), never run: ``wrap(genai.Client())``.

google-genai's own annotations name PIL's ``Image`` in the ``contents`` unions; without Pillow
installed pyright sees those members as partly unknown, which strict mode reports against the
SDK's methods, not ours. Only that check is relaxed here.
"""
# pyright: reportUnknownMemberType=false

from __future__ import annotations

from typing import assert_type

import revenium


async def wrapped_google_clients() -> None:
    from google import genai
    from google.genai import types

    client = revenium.wrap(genai.Client(api_key="k"))
    assert_type(client, genai.Client)
    assert_type(revenium.unwrap(client), genai.Client)
    response = client.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert_type(response, types.GenerateContentResponse)
    for chunk in client.models.generate_content_stream(model="gemini-2.5-flash", contents="x"):
        assert_type(chunk, types.GenerateContentResponse)
    chat = client.chats.create(model="gemini-2.5-flash")
    assert_type(chat.send_message("x"), types.GenerateContentResponse)
    aio = client.aio
    assert_type(aio, genai.client.AsyncClient)
    answer = await aio.models.generate_content(model="gemini-2.5-flash", contents="x")
    assert_type(answer, types.GenerateContentResponse)
    stream = await aio.models.generate_content_stream(model="gemini-2.5-flash", contents="x")
    async for piece in stream:
        assert_type(piece, types.GenerateContentResponse)
    operation = client.models.generate_videos(model="veo-3.0-generate-001", prompt="x")
    assert_type(client.operations.get(operation), types.GenerateVideosOperation)
    vertex = revenium.wrap(genai.Client(vertexai=True, project="p", location="us-central1"))
    assert_type(vertex, genai.Client)
