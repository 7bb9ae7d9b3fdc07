"""A lean HTTP/1.1 load client: keep-alive connections on asyncio streams.

The benchmarks share the machine with the server, so the client must cost
little: a general client (httpx) spends about as much CPU per request as the
API does, and would measure itself. This one writes a prepared request and
reads the answer by its Content-Length; nothing else.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson


class HTTPStatusError(Exception):
    """An answer outside 2xx."""


@dataclass
class Answer:
    """Status and body of one response."""

    status: int
    body: bytes

    def json(self) -> dict[str, object]:
        """The body as JSON."""
        data = orjson.loads(self.body)
        assert isinstance(data, dict)
        return data


class Connection:
    """One keep-alive connection; one request at a time."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def send(self, method: str, path: str, body: object = None) -> Answer:
        """Send `body` as JSON (nothing when None); raise HTTPStatusError unless 2xx."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        payload = b"" if body is None else orjson.dumps(body)
        kind = "" if body is None else "Content-Type: application/json\r\n"
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
            f"{kind}Content-Length: {len(payload)}\r\n{self._headers}\r\n"
        )
        self._writer.write(head.encode() + payload)
        raw = await self._reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        answer = Answer(int(raw[9:12]), await self._reader.readexactly(length))
        if not 200 <= answer.status < 300:
            raise HTTPStatusError(f"{path}: {answer.status} {answer.body[:300]!r}")
        return answer

    async def post(self, path: str, body: object) -> Answer:
        """POST `body` as JSON."""
        return await self.send("POST", path, body)

    async def close(self) -> None:
        """Close the connection."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def connections(urls: list[str], headers: dict[str, str], n: int) -> list[Connection]:
    """`n` connections spread round robin over the servers at `urls`."""
    spread = itertools.cycle(urls)
    return [Connection(next(spread), headers) for _ in range(n)]
