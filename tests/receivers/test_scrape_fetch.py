"""The scrape receiver's own HTTP/1.1 GET (`fetch.PageFetcher`) against scripted servers.

Each server answers the requests it reads with the raw bytes a test gives it, written in the
pieces the test chooses, so framing (Content-Length, chunked with extensions and trailers, end of
connection), content coding, kept-alive reuse, an idle connection the server closed, limits and
malformed answers are all checked byte for byte, and the fetcher must recover after each error.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metricgate.receivers.prometheus.fetch import PageFetcher, ScrapeError, Unhandled

PAGE = b"".join(b'metric_%d{a="b"} %d\n' % (n, n) for n in range(400))
HEADERS = {"Accept": "text/plain", "Accept-Encoding": "gzip", "User-Agent": "test"}


@dataclass
class Script:
    """What the server answers: one list of pieces per request; `close` after those answers."""

    answers: list[list[bytes]] = field(default_factory=list)
    close_after: bool = False
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def scripted(script: Script) -> AsyncIterator[str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        script.connections += 1
        try:
            while script.answers:
                head = await reader.readuntil(b"\r\n\r\n")
                script.requests.append(head)
                for piece in script.answers.pop(0):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0)
                if script.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/metrics?x=1"
    finally:
        server.close()


def response(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(body: bytes, size: int, trailer: bool = False) -> bytes:
    out = b"".join(
        b"%x;ext=1\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )
    return out + (b"0\r\nX-Trailer: 1\r\n\r\n" if trailer else b"0\r\n\r\n")


async def test_a_kept_alive_connection_serves_every_scrape() -> None:
    script = Script([[response(PAGE, "Content-Type: text/plain")]] * 3)
    async with scripted(script) as url:
        fetcher = PageFetcher(url, HEADERS, follow_redirects=True)
        for _ in range(3):
            assert await fetcher.get(1 << 20, "Bearer t") == (PAGE, "text/plain")
        fetcher.close()
    assert script.connections == 1
    request = script.requests[0].decode()
    assert request.startswith("GET /metrics?x=1 HTTP/1.1\r\n")
    assert f"Host: {url.split('/')[2]}\r\n" in request
    assert "Authorization: Bearer t\r\n" in request and "Accept-Encoding: gzip\r\n" in request


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(["length", "chunked", "chunked+trailer", "close"]),
    st.booleans(),
    st.lists(st.integers(1, 4000), min_size=1, max_size=8),
    st.integers(1, 5000),
)
def test_every_framing_and_split_gives_the_body(
    framing: str, compressed: bool, cuts: list[int], chunk: int
) -> None:
    body = gzip.compress(PAGE) if compressed else PAGE
    extra = ["Content-Encoding: gzip"] if compressed else []
    if framing == "length":
        raw = response(body, *extra)
    elif framing == "close":
        raw = b"HTTP/1.0 200 OK\r\n" + "".join(f"{h}\r\n" for h in extra).encode() + b"\r\n" + body
    else:
        raw = response(
            chunked(body, chunk, framing.endswith("trailer")),
            "Transfer-Encoding: chunked",
            *extra,
        )
    pieces, at = [], 0
    for cut in cuts:
        pieces.append(raw[at : at + cut])
        at += cut
    pieces.append(raw[at:])

    async def run() -> None:
        script = Script([[p for p in pieces if p]], close_after=framing == "close")
        async with scripted(script) as url:
            fetcher = PageFetcher(url, HEADERS, follow_redirects=True)
            assert (await fetcher.get(1 << 20))[0] == PAGE
            fetcher.close()

    asyncio.run(run())


async def test_an_idle_connection_the_target_closed_is_reopened() -> None:
    script = Script([[response(PAGE)]], close_after=True)
    async with scripted(script) as url:
        fetcher = PageFetcher(url, HEADERS, follow_redirects=True)
        assert (await fetcher.get(1 << 20))[0] == PAGE
        await asyncio.sleep(0.05)  # the server closed its end meanwhile
        script.answers.append([response(b"again 1\n")])
        assert (await fetcher.get(1 << 20))[0] == b"again 1\n"
        fetcher.close()
    assert script.connections == 2


@pytest.mark.parametrize(
    ("answer", "reason", "text"),
    [
        (response(PAGE), "body_size_limit", "body size limit exceeded"),
        (response(chunked(PAGE, 100), "Transfer-Encoding: chunked"), "body_size_limit", "limit"),
        (
            response(gzip.compress(b"0" * 10_000_000), "Content-Encoding: gzip"),
            "body_size_limit",
            "body size limit exceeded",
        ),
        (response(b"nope", status="500 Internal Server Error"), "http_status", "500 Internal"),
        (response(b"", "Location: /x", status="302 Found"), "http_status", "HTTP status 302"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "connection", "not an HTTP/1.x response"),
        (response(b"zz\r\nab\r\n0\r\n\r\n", "Transfer-Encoding: chunked"), "connection", "chunk"),
        (response(b"abc", "Content-Encoding: gzip"), "connection", "bad gzip body"),
        (response(b"x", "Content-Encoding: br"), "connection", "unsupported Content-Encoding"),
        (response(PAGE[:100], "Content-Length: 200"), "connection", "closed before"),
    ],
)
async def test_bad_answers_fail_with_a_reason_and_the_next_scrape_works(
    answer: bytes, reason: str, text: str
) -> None:
    script = Script([[answer]], close_after=True)
    async with scripted(script) as url:
        fetcher = PageFetcher(url, HEADERS, follow_redirects=False)
        with pytest.raises(ScrapeError) as failed:
            await fetcher.get(1000)
        assert failed.value.reason == reason and text in str(failed.value)
        script.close_after = False
        script.answers.append([response(b"ok 1\n")])
        assert (await fetcher.get(1000))[0] == b"ok 1\n"
        fetcher.close()


async def test_a_redirect_to_follow_is_left_to_the_caller() -> None:
    script = Script([[response(b"", "Location: /elsewhere", status="301 Moved Permanently")]])
    async with scripted(script) as url:
        fetcher = PageFetcher(url, HEADERS, follow_redirects=True)
        with pytest.raises(Unhandled):
            await fetcher.get(1 << 20)
        fetcher.close()


async def test_deflate_in_both_wrappings() -> None:
    wrapped, raw = zlib.compressobj(wbits=15), zlib.compressobj(wbits=-15)
    bodies = [c.compress(PAGE) + c.flush() for c in (wrapped, raw)]
    script = Script([[response(body, "Content-Encoding: deflate")] for body in bodies])
    async with scripted(script) as url:
        fetcher = PageFetcher(url, HEADERS, follow_redirects=True)
        assert [(await fetcher.get(1 << 20))[0] for _ in bodies] == [PAGE, PAGE]
        fetcher.close()


async def test_a_refused_connection_is_a_connection_error() -> None:
    async with scripted(Script()) as url:
        pass  # closed: nothing listens there now
    fetcher = PageFetcher(url, HEADERS, follow_redirects=True)
    with pytest.raises(ScrapeError) as failed:
        await fetcher.get(1000)
    assert failed.value.reason == "connection" and "scrape failed" in str(failed.value)


async def test_bytes_sent_on_an_idle_connection_are_not_taken_as_the_next_answer() -> None:
    """A server that answers an idle connection unasked (a 408 before closing, as some do) must
    not have that answer read as the reply to the next scrape."""
    unasked = response(b"", "Connection: keep-alive", status="408 Request Timeout")
    script = Script([[response(PAGE)], [response(b"fresh 1\n")]])
    async with scripted(script) as url:
        fetcher = PageFetcher(url, HEADERS, follow_redirects=True)
        assert (await fetcher.get(1 << 20))[0] == PAGE
        connection = fetcher._connection
        assert connection is not None
        connection.data_received(unasked)  # as if the server had written it while idle
        assert (await fetcher.get(1 << 20))[0] == b"fresh 1\n"
        fetcher.close()
    assert script.connections == 2
