"""The stand-in backends behind an in-process ``httpx2.MockTransport``, for every SDK.

The OpenAI and Anthropic backends answer a request with a ``Reply`` (status, headers, body
or chunks, and whether the connection drops mid-body). This module turns a backend into a
transport handler, so the in-process path behaves as the stand-in server's sockets do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import httpx2

from revenium.providers._openai_standin import Reply

__all__ = ["Handler", "backend_handler"]

Handler = Callable[[httpx2.Request], httpx2.Response]
Handle = Callable[[str, str, Mapping[str, str], bytes], Reply]


class _Body(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A response body for sync and async clients alike; ``abort`` mimics a dropped connection."""

    def __init__(self, reply: Reply, request: httpx2.Request) -> None:
        self._reply = reply
        self._request = request

    def _failure(self) -> httpx2.RemoteProtocolError:
        # What httpx2 raises when a real server hangs up mid-body (see the socket tests).
        message = "peer closed connection without sending complete message body"
        return httpx2.RemoteProtocolError(message, request=self._request)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._reply.chunks
        if self._reply.abort:
            raise self._failure()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._reply.chunks:
            yield chunk
        if self._reply.abort:
            raise self._failure()


def backend_handler(handle: Handle) -> Handler:
    """A transport handler answering with ``handle`` (a stand-in backend's ``handle``)."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        reply = handle(
            request.method, request.url.raw_path.decode("ascii"), request.headers, request.content
        )
        headers = {"content-type": reply.content_type, **reply.headers}
        if reply.abort or reply.stream:
            return httpx2.Response(reply.status, headers=headers, stream=_Body(reply, request))
        return httpx2.Response(reply.status, headers=headers, content=reply.body)

    return handler
