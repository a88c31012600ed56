"""Tell the browser where the server's root is, so opening a page URL directly causes no failed requests.

Streamlit's frontend cannot tell whether ``/train`` is a page of an app served at ``/`` or an app served
under the base path ``/train``, so on every direct load of a page URL (a reload, a link, a new tab) it
first probes ``/train/_stcore/health`` and ``/train/_stcore/host-config``, gets two 404s (logged as console
errors), and only then tries ``/`` (streamlit/streamlit#7074, still open; ``getPossibleBaseUris`` in its
frontend). The frontend skips the guessing when ``window.__streamlit.BACKEND_BASE_URL`` is set (the hook
hosts that embed Streamlit use), so this ASGI middleware adds that one line to the app's HTML page.
``serve.py`` installs it; nothing else in the app depends on it.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Server routes under the base path that never answer with the app's HTML page.
NOT_PAGES = ("_stcore/", "static/", "media/", "component/", "app/static/")
#: Request headers dropped for page requests: the HTML must arrive whole and uncompressed to be edited.
_DROPPED = {b"accept-encoding", b"if-none-match", b"if-modified-since", b"range"}


def base_path() -> str:
    """The server's ``server.baseUrlPath`` as '/path' ('' at the root)."""
    from streamlit import config  # late: this module stays importable (and testable) without a server

    path = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{path}" if path else ""


def pin_script(base: str) -> bytes:
    """The script tag that fixes the frontend's server URL to ``<origin><base>/``."""
    origin_relative = json.dumps(f"{base}/")
    return (f"<script>window.__streamlit = Object.assign(window.__streamlit || {{}}, "
            f"{{BACKEND_BASE_URL: new URL({origin_relative}, window.location.origin).href}})</script>").encode()


def is_page_request(scope: Scope, base: str) -> bool:
    """A GET that Streamlit answers with its HTML page (any path but its own routes under ``base``)."""
    if scope.get("type") != "http" or scope.get("method") != "GET":
        return False
    path = str(scope.get("path", ""))
    if base and not (path == base or path.startswith(base + "/")):
        return False
    return not path[len(base):].lstrip("/").startswith(NOT_PAGES)


class PinnedBaseUrl:
    """ASGI middleware: adds :func:`pin_script` to the ``<head>`` of the HTML page; all else passes through."""

    def __init__(self, app: ASGIApp, base: Callable[[], str] = base_path) -> None:
        self.app, self.base = app, base

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        base = self.base()
        if not is_page_request(scope, base):
            await self.app(scope, receive, send)
            return
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in _DROPPED]
        await self.app({**scope, "headers": headers}, receive, _Injector(send, pin_script(base)))


class _Injector:
    """A ``send`` that buffers an HTML response and inserts the script; other responses stream unchanged."""

    def __init__(self, send: Send, script: bytes) -> None:
        self.send, self.script = send, script
        self.start: Message | None = None
        self.html = False
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type", b"")
            self.html = content_type.startswith(b"text/html")
            if not self.html:
                await self.send(message)
            else:
                self.start = message
            return
        if not self.html or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(self.chunks).replace(b"<head>", b"<head>" + self.script, 1)
        assert self.start is not None
        headers = [(k, v) for k, v in self.start.get("headers", []) if k.lower() not in (b"content-length", b"etag")]
        await self.send({**self.start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await self.send({"type": "http.response.body", "body": body})
