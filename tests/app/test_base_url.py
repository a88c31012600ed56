"""The middleware that pins the frontend's server URL: it edits the app's HTML page and nothing else."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ui.base_url import PinnedBaseUrl, is_page_request, pin_script

PAGE = b"<!DOCTYPE html><html><head><title>Streamlit</title></head><body></body></html>"


def serve(path: str, body: bytes = PAGE, content_type: bytes = b"text/html; charset=utf-8", base: str = "",
          method: str = "GET") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Messages the middleware sends for one request, and the scope the wrapped app saw."""
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen.update(scope)
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), (b"etag", b'"x"')]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body[:10], "more_body": True})
        await send({"type": "http.response.body", "body": body[10:]})

    sent: list[dict[str, Any]] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request"}

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(b"accept-encoding", b"gzip"), (b"if-none-match", b'"x"'), (b"cookie", b"a=1")]}
    asyncio.run(PinnedBaseUrl(app, base=lambda: base)(scope, receive, send))
    return sent, seen


def body_of(sent: list[dict[str, Any]]) -> bytes:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("path", ["/", "/train", "/runs"])
def test_the_html_page_gets_the_server_url_whole_and_uncompressed(path: str) -> None:
    sent, seen = serve(path)
    body = body_of(sent)
    assert body.startswith(b"<!DOCTYPE html><html><head>" + pin_script("")) and body.endswith(b"</html>")
    headers = dict(sent[0]["headers"])
    assert headers[b"content-length"] == str(len(body)).encode() and b"etag" not in headers
    assert {k for k, _ in seen["headers"]} == {b"cookie"}  # asked for whole, uncompressed and fresh


def test_the_script_points_at_the_root_or_the_base_path() -> None:
    assert b'new URL("/", window.location.origin)' in pin_script("")
    assert b'new URL("/studio/", window.location.origin)' in pin_script("/studio")
    sent, _ = serve("/studio/train", base="/studio")
    assert pin_script("/studio") in body_of(sent)


@pytest.mark.parametrize("path, method", [("/_stcore/health", "GET"), ("/static/js/index.js", "GET"),
                                          ("/media/icon.png", "GET"), ("/component/live_charts/index.html", "GET"),
                                          ("/train", "POST")])
def test_everything_else_passes_through_untouched(path: str, method: str) -> None:
    assert not is_page_request({"type": "http", "method": method, "path": path}, "")
    sent, seen = serve(path, method=method)
    assert body_of(sent) == PAGE and len(seen["headers"]) == 3


def test_a_non_html_answer_streams_unchanged() -> None:
    sent, _ = serve("/favicon.png", body=b"\x89PNG" + bytes(50), content_type=b"image/png")
    assert body_of(sent) == b"\x89PNG" + bytes(50) and len(sent) == 3  # start + two chunks, not buffered
