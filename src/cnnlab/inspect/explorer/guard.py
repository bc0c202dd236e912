"""Who may ask the explorer for work: checks on every request before any of it is read or computed.

- **Host** (DNS rebinding): a server on a loopback address answers only Host headers naming this
  machine (``localhost``, ``127.0.0.1``, ``[::1]`` or the address it is bound to), so a page whose
  name resolves to 127.0.0.1 cannot read its answers.
- **Origin** (cross-site requests): every POST must carry an ``Origin`` header equal to the page's
  own origin, ``http://`` + its Host. A missing or foreign one is refused with 403, so a form, a
  ``no-cors`` fetch or an image on another site's page costs the server nothing.
- **Sec-Fetch-Site**: a browser marks each request with where it comes from; an API GET that a
  browser says comes from another site or port is refused as well.
- **Content-Type**, checked by the routes with ``media_type``: JSON routes take only
  ``application/json``, which no form or ``no-cors`` fetch can send.

``BoundedLog`` keeps the server's log small under a flood: each kind of message at most a few
times a minute, then one line saying how many were left out.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time

__all__ = ["Guard", "allowed_hosts", "host_name", "media_type", "BoundedLog", "bound_logging"]

LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")


def allowed_hosts(bound: str) -> set[str] | None:
    """The Host names a server bound to ``bound`` answers: this machine's for a loopback address,
    any for an address the network can reach (None)."""
    try:
        loopback = ipaddress.ip_address(bound.split("%")[0]).is_loopback
    except ValueError:
        loopback = bound == "localhost"
    return {*LOCAL_NAMES, bound.lower()} if loopback else None


def host_name(host: str) -> str:
    """The name in a Host header, without its port: ``[::1]:8765`` -> ``::1``, ``A:80`` -> ``a``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def media_type(headers) -> str:
    """The request's Content-Type without its parameters: ``application/json; charset=utf-8`` ->
    ``application/json``."""
    return headers.get("content-type", "").split(";")[0].strip().lower()


class Guard:
    """ASGI middleware: the Host, Sec-Fetch-Site and Origin checks above, before the app sees a request."""

    def __init__(self, app, hosts: set[str] | None):
        self.app, self.hosts = app, hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope)
        if refusal is None:
            return await self.app(scope, receive, send)
        status, message = refusal
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def refusal(self, scope) -> tuple[int, str] | None:
        """(status, one line) for a request to refuse, or None."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return 400, f"this server answers only Host names of this machine. Received: Host: {host!r}"
        site = headers.get("sec-fetch-site", "same-origin")
        if scope["path"].startswith("/api/") and site not in ("same-origin", "none"):
            return 403, f"the API answers only the explorer's own page. Received: Sec-Fetch-Site: {site}"
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin, own = headers.get("origin"), f"{scope.get('scheme', 'http')}://{host.lower()}"
            if origin is None:
                return (
                    403,
                    f"a {scope['method']} must come from the explorer's page (it has no Origin header)",
                )
            if origin.lower() != own:
                return 403, f"a {scope['method']} must come from {own}. Received: Origin: {origin[:200]!r}"
        return None


class BoundedLog(logging.Filter):
    """Lets each message (by logger and template) through at most ``limit`` times per ``window``
    seconds; the first one let through after a pause says how many were left out."""

    def __init__(self, limit: int = 5, window: float = 60.0):
        super().__init__()
        self.limit, self.window = limit, window
        self.seen: dict[tuple[str, str], list] = {}  # key -> [window start, passed, dropped]
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg)[:120])
        now = time.monotonic()
        with self.lock:
            if len(self.seen) > 1000:  # templates are few; keys from formatted messages must not pile up
                self.seen.clear()
            started, passed, dropped = self.seen.get(key, [now, 0, 0])
            if now - started >= self.window:
                started, passed = now, 0
            if passed >= self.limit:
                self.seen[key] = [started, passed, dropped + 1]
                return False
            self.seen[key] = [started, passed + 1, 0]
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like this left out of the log)"
        return True


LOGGERS = ("uvicorn.error", "asyncio", "cnnlab.explore")


def bound_logging(limit: int = 5, window: float = 60.0) -> BoundedLog:
    """Put one BoundedLog on each logger a flood could fill (uvicorn's, asyncio's and ours)."""
    bound = BoundedLog(limit, window)
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, BoundedLog)]:
            logger.removeFilter(old)
        logger.addFilter(bound)
    return bound
