"""A fast loopback stand-in for the metering API, run in its own process by the benchmarks.

A minimal asyncio HTTP/1.1 server with keep-alive: it reads a request, answers 201 with a small
JSON body, and counts requests. It is deliberately cheap so that the benchmark measures the
client, not the server. Run: ``python benchmarks/fake_api.py PORT_FILE``; it writes its port.
"""

from __future__ import annotations

import asyncio
import sys

RESPONSE = (
    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n"
    b'{"id":"ok"}'
)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            writer.write(RESPONSE)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port_file: str) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    with open(port_file, "w") as f:  # noqa: PTH123, ASYNC230 - written once at start-up
        f.write(str(port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
