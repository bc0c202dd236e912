"""Serving the explorer: the listening socket, uvicorn with limits, and the addresses to print.

What keeps a server that is left running responsive whatever connects to it:

- **Read timeouts.** A request's headers and body must arrive within ``READ_TIMEOUT`` seconds of
  its first byte (or of the connection, for the first request); a connection idle after an answer
  is closed after uvicorn's ``timeout_keep_alive``. Slow or silent clients hold nothing for long.
- **A connection limit.** At most ``MAX_CONNECTIONS`` are open; one more closes the connection
  that has waited longest for a request (or, if every one is busy, the new one), so idle sockets
  can neither exhaust the file limit nor lock out the next real request.
- **Bounded logging** (``guard.BoundedLog``): a flood leaves a few lines, not megabytes.
"""

from __future__ import annotations

import socket
import time

from cnnlab.inspect.explorer.guard import allowed_hosts, bound_logging
from cnnlab.inspect.explorer.served import Served
from cnnlab.inspect.explorer.server import create_app

__all__ = ["bind", "make_server", "serve", "urls", "READ_TIMEOUT", "MAX_CONNECTIONS"]

READ_TIMEOUT = 20.0  # seconds for one request to arrive: a 5 MB upload over a slow network fits
MAX_CONNECTIONS = 100  # a browser opens about 6; a load test 16
KEEP_ALIVE = 5  # seconds an idle connection is kept after an answer (uvicorn's default)


def _protocol(read_timeout: float, max_connections: int):
    """uvicorn's h11 protocol with the read deadline and the connection limit."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    waiting = (h11.IDLE, h11.SEND_BODY)  # the client still owes us (part of) a request

    class Limited(H11Protocol):
        deadline = None
        waiting_since: float | None = None  # when it began to wait for a request; None while busy

        def connection_made(self, transport):
            super().connection_made(transport)
            self.waiting_since = time.monotonic()
            self.deadline = self.loop.call_later(read_timeout, self.expire)
            live = [
                c for c in self.connections if not c.transport.is_closing()
            ]  # closed ones linger a moment
            if len(live) > max_connections:
                idle = [c for c in live if getattr(c, "waiting_since", None) is not None]
                victim = min(idle, key=lambda c: c.waiting_since)  # at worst this new one
                victim.waiting_since = None
                victim.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state in waiting:
                if self.deadline is None:  # the first bytes of the next request on a kept connection
                    self.deadline = self.loop.call_later(read_timeout, self.expire)
            else:  # a whole request arrived: the app has it
                self.waiting_since = None
                self.disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.waiting_since = time.monotonic()

        def connection_lost(self, exc):
            self.disarm()
            self.waiting_since = None
            super().connection_lost(exc)

        def disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def expire(self) -> None:
            self.deadline = None
            if self.conn.their_state in waiting and not self.transport.is_closing():
                self.transport.close()

    return Limited


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port), so a port in use is an error before anything starts."""
    import errno

    from cnnlab.errors import ConfigError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(
            f"--host {host} is not an address this machine can listen on ({exc.strerror})"
        ) from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(
        socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
    )  # a restart may reuse TIME_WAIT, never a live port
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = (
            "in use; pick another with --port"
            if exc.errno == errno.EADDRINUSE
            else (exc.strerror or str(exc))
        )
        raise ConfigError(f"cannot listen on {host} port {port}: {reason}") from None
    return sock


def make_server(
    runs: list[Served],
    sock: socket.socket,
    torch_threads: int | None = None,
    read_timeout: float = READ_TIMEOUT,
    max_connections: int = MAX_CONNECTIONS,
):
    """A uvicorn server for ``runs`` on the bound ``sock``; ``.run(sockets=[sock])`` starts it."""
    import uvicorn

    app = create_app(runs, allowed_hosts(sock.getsockname()[0]), torch_threads)
    config = uvicorn.Config(
        app,
        http=_protocol(read_timeout, max_connections),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=KEEP_ALIVE,
    )
    server = uvicorn.Server(config)
    bound_logging()
    return server


def urls(sock: socket.socket) -> tuple[str, list[str]]:
    """(the URL to open on this machine, URLs other machines may use) for a bound socket. An
    unspecified address (0.0.0.0, ::) is no place to browse to: this machine is 127.0.0.1 (or
    [::1]), and others reach it by the address of its outgoing interface."""
    import ipaddress

    host, port = sock.getsockname()[:2]
    address = ipaddress.ip_address(host.split("%")[0])
    if not address.is_unspecified:
        return _url(host, port), []
    local = _url("::1" if address.version == 6 else "127.0.0.1", port)
    return local, [_url(a, port) for a in _outgoing(address.version)]


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def _outgoing(version: int) -> list[str]:
    """This machine's address on its default route, found by connecting a UDP socket (which sends
    nothing) towards a documentation address; none when there is no route."""
    family, target = (socket.AF_INET6, "2001:db8::1") if version == 6 else (socket.AF_INET, "192.0.2.1")
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((target, 9))
            return [probe.getsockname()[0]]
    except OSError:
        return []


def serve(runs: list[Served], sock: socket.socket, on_ready=None) -> None:
    """Serve ``runs`` on the bound ``sock`` until Ctrl+C (or SIGTERM); then return."""
    import torch

    # One image is little work for one core; more threads per forward only contend with the other
    # requests' forwards, which on a loaded machine makes each forward many times slower (the docs'
    # results page).
    torch.set_num_threads(1)
    server = make_server(runs, sock, torch_threads=1)
    if on_ready is not None:
        on_ready()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn shuts down gracefully, then re-raises the signal it caught
        pass
    finally:
        sock.close()
