"""The explorer's web server: a Starlette app with a small JSON API, and the page as static files.

``ROUTES`` is the API at a glance: each path, its method and the plain function that serves it,
from the request to the response. Requests name a run by its position on the command line
(``/api/runs/0/...``), never by a path; the only files served are those in ``STATIC``, by name.
Every error is a 4xx (or 500) with a one-line JSON body ``{"error": "..."}``, and the server goes
on serving. The API is listed in the docs' guide to ``cnnlab explore``.

Why Starlette on uvicorn: a small, maintained ASGI toolkit with routing, a test client and no
templating or ORM to carry; its synchronous work (each forward pass) runs in a thread pool,
so requests overlap while one image goes through the network.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cnnlab import shapes
from cnnlab.data.dataset import PIXEL_MAX
from cnnlab.errors import CnnlabError
from cnnlab.inspect.explorer import compute, inputs, served
from cnnlab.inspect.explorer.guard import Guard, media_type
from cnnlab.inspect.explorer.served import Served
from cnnlab.inspect.explorer.workers import Workers

LOG = logging.getLogger("cnnlab.explore")

__all__ = ["create_app"]

Endpoint = Callable[[Request], Awaitable[Response]]

MAX_JSON_BYTES = 64 * 1024  # an image is 1 KB of base64; nothing the page sends comes near
UPLOAD_TYPES = ("image/png", "image/jpeg", "application/octet-stream")  # what a browser calls a file
# The POST routes of one run (/api/runs/N/NAME): each takes a JSON object and answers what the
# function computes. Read when an app is made, so a test may swap one.
POSTS = {
    "forward": compute.forward,
    "conv": compute.conv,
    "pool": compute.pool,
    "explain": compute.explained,
    "saliency": compute.saliency,
}
STATIC = {
    "index.html": "text/html; charset=utf-8",
    "explore.css": "text/css; charset=utf-8",
    **{
        name: "text/javascript; charset=utf-8"
        for name in ("explore.js", "common.js", "draw.js", "closeup.js", "panels.js")
    },
}
# Nothing but this server: no CDN, no fonts, no beacons, even if a later edit adds one.
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"


@dataclasses.dataclass(frozen=True)
class Explorer:
    """What every route serves from, kept in the app's state: the runs, the threads that compute,
    and the page's files, read once."""

    runs: list[Served]
    workers: Workers
    files: dict[str, bytes]


def create_app(runs: list[Served], allowed_hosts: set[str] | None = None, torch_threads: int | None = None):
    """The Starlette app, behind ``guard.Guard``. ``allowed_hosts`` (Host names) guards a loopback
    server against DNS rebinding (None: any name); ``torch_threads`` sets torch's threads in each
    worker thread (None: leave them)."""
    folder = resources.files(__package__) / "static"
    posts = {f"/api/runs/{{run:int}}/{name}": _computing(work) for name, work in POSTS.items()}
    table = {**ROUTES, **{path: ("POST", endpoint) for path, endpoint in posts.items()}}
    app = Starlette(
        routes=[Route(path, endpoint, methods=[method]) for path, (method, endpoint) in table.items()],
        middleware=[Middleware(Guard, hosts=allowed_hosts)],
        # Starlette types every handler as taking Exception, so one for HTTPException cannot match
        # (Kludex/starlette#1142): the stub, not the handler, is too narrow.
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},  # type: ignore[dict-item]
    )
    app.state.explorer = Explorer(
        list(runs), Workers(torch_threads), {name: (folder / name).read_bytes() for name in STATIC}
    )
    return app


def _explorer(request: Request) -> Explorer:
    return request.app.state.explorer


def _run(request: Request, index: int | None = None) -> Served:
    """The run the request names (its path's ``run``, or ``index``), or a 404."""
    runs = _explorer(request).runs
    index = request.path_params["run"] if index is None else index
    if not 0 <= index < len(runs):
        raise _fail(404, f"no run {index}; this server has runs 0..{len(runs) - 1}")
    return runs[index]


async def page(request: Request) -> Response:
    return _file(request, "index.html")


async def static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in STATIC or name == "index.html":
        raise _fail(404, f"not found: {request.url.path}")
    return _file(request, name)


def _file(request: Request, name: str) -> Response:
    headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
    return Response(_explorer(request).files[name], media_type=STATIC[name], headers=headers)


async def list_runs(request: Request) -> Response:
    return JSONResponse({"runs": [run.as_json(i) for i, run in enumerate(_explorer(request).runs)]})


async def layers(request: Request) -> Response:
    run = _run(request)
    net = run.network
    mean, std = run.dataset.statistics()
    return JSONResponse(
        {
            "run": request.path_params["run"],
            "model": run.model,
            "input_shape": list(net.input_shape),
            "traced": net.traced,  # its own forward(): the layers as one pass called them
            "classes": list(run.classes),
            "channels": ["gray"] if net.input_shape[0] == 1 else ["red", "green", "blue"],
            "normalisation": {
                "pixel_max": PIXEL_MAX,
                "mean": list(mean),
                "std": list(std),
            },
            "layers": [step.as_json() for step in net.steps],
        }
    )


async def test_image(request: Request) -> Response:
    run, query = _with_tests(request), request.query_params
    chosen = [key for key in ("index", "class", "mistake") if key in query]
    if len(chosen) != 1:
        raise _fail(400, "give exactly one of ?index=N, ?class=K (with &after=I) or ?mistake=SEED")
    try:
        wanted = {k: _query_int(query, k) for k in query}
        answer = await _explorer(request).workers.run(compute.pick_test_image, run, chosen[0], wanted)
    except ValueError as exc:
        raise _fail(400, str(exc)) from None
    return JSONResponse(answer)


def _with_tests(request: Request) -> Served:
    """The request's run, or a 404 when it has no test images to show."""
    run = _run(request)
    if run.tests is None:
        raise _fail(404, f"no test images for run {request.path_params['run']}: {run.tests_note}")
    return run


async def upload(request: Request) -> Response:
    """An image file, prepared as the run (``?run=N``, 0 by default) draws its data."""
    query = request.query_params
    invert = {"auto": None, "yes": True, "no": False}.get(query.get("invert", "auto"), "bad")
    if invert == "bad":
        raise _fail(400, f"invert must be auto, yes or no. Received: {query.get('invert')!r}")
    kind = media_type(request.headers)
    if kind not in UPLOAD_TYPES:
        raise _fail(415, f"the upload must be sent as {', '.join(UPLOAD_TYPES)}. Received: {kind!r}")
    try:
        index = _query_int(query, "run") if "run" in query else 0
    except ValueError as exc:
        raise _fail(400, str(exc)) from None
    dataset = _run(request, index).dataset  # the photo is prepared as that run's data draws
    data = await _body(request, inputs.MAX_UPLOAD_BYTES, "the upload")
    try:
        prepared = await _explorer(request).workers.decode(inputs.prepare_upload, data, dataset, invert)
    except CnnlabError as exc:
        raise _fail(400, str(exc)) from None
    return JSONResponse({"image": inputs.encode_image(prepared.image), "inverted": prepared.inverted})


async def progress(request: Request) -> Response:
    """The run's epochs so far; loads a new checkpoint first if one landed (a run still training)."""
    return JSONResponse(await _explorer(request).workers.run(served.progress, _run(request)))


async def filters(request: Request) -> Response:
    try:
        return JSONResponse(compute.filters(_run(request)))
    except ValueError as exc:
        raise _fail(400, str(exc)) from None


async def top_images(request: Request) -> Response:
    """?layer=L&channel=C: the test images that excite that channel most (computed once)."""
    run, query = _with_tests(request), request.query_params
    if set(query) != {"layer", "channel"}:
        raise _fail(400, "give ?layer=L&channel=C")
    try:
        wanted = {k: _query_int(query, k) for k in ("layer", "channel")}
        return JSONResponse(await _explorer(request).workers.run(compute.top_images, run, wanted))
    except ValueError as exc:
        raise _fail(400, str(exc)) from None


async def shape(request: Request) -> Response:
    """?size=&kernel=&padding=&stride=&dilation=: one side of a convolution's output, by
    cnnlab.shapes' formula (the widget's arithmetic), or the error it gives."""
    query, names = request.query_params, ("size", "kernel", "padding", "stride", "dilation")
    try:
        n, k, p, s, d = (_query_int(query, name) if name in query else 1 for name in names)
        if "padding" not in query:
            p = 0
        out = shapes.conv2d_output_shape((n, n), k, s, p, d)[0]
    except ValueError as exc:
        raise _fail(400, str(exc)) from None
    formula = f"floor(({n} + 2*{p} - {d}*({k} - 1) - 1) / {s}) + 1 = {out}"
    return JSONResponse(
        {"size": n, "kernel": k, "padding": p, "stride": s, "dilation": d, "out": out, "formula": formula}
    )


def _computing(work: Callable[[Served, dict], Any]) -> Endpoint:
    """The endpoint for ``work(run, body)``: the JSON body parsed, the work done on a worker thread
    (JSON encoding included), a ValueError (a bad field, out of range) a 400."""

    async def endpoint(request: Request) -> Response:
        run, body = _run(request), await _json(request)
        try:
            return await _explorer(request).workers.run(_respond, work, run, body)
        except ValueError as exc:
            raise _fail(400, str(exc)) from None

    return endpoint


def _respond(work: Callable[[Served, dict], Any], run: Served, body: dict) -> Response:
    answer = work(run, body)
    if isinstance(answer, bytes):  # already JSON
        return Response(answer, media_type="application/json")
    return JSONResponse(answer)


# Every GET and fixed POST route: its path, its method and the function that serves it. The POST
# routes of one run's computations are added from POSTS.
ROUTES: dict[str, tuple[str, Endpoint]] = {
    "/": ("GET", page),
    "/static/{name}": ("GET", static),
    "/api/runs": ("GET", list_runs),
    "/api/runs/{run:int}/layers": ("GET", layers),
    "/api/runs/{run:int}/test": ("GET", test_image),
    "/api/image": ("POST", upload),
    "/api/runs/{run:int}/progress": ("GET", progress),
    "/api/runs/{run:int}/filters": ("GET", filters),
    "/api/runs/{run:int}/top": ("GET", top_images),
    "/api/shape": ("GET", shape),
}


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 404:
        return _error(404, f"not found: {request.url.path}" if exc.detail == "Not Found" else exc.detail)
    return _error(exc.status_code, exc.detail)


async def _internal_error(request: Request, exc: Exception) -> Response:
    # The server's terminal gets the whole story (a few times a minute at most), the page one line.
    LOG.error("internal error in %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal error ({type(exc).__name__}: {exc})")


def _fail(status: int, message: str) -> HTTPException:
    return HTTPException(status, message)


async def _body(request: Request, limit: int, what: str) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    too_big = f"{what} is larger than {limit / 1024 / 1024:g} MB"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _fail(413, too_big)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _fail(413, too_big)
        chunks.append(chunk)
    return b"".join(chunks)


async def _json(request: Request) -> dict:
    kind = media_type(request.headers)
    if kind != "application/json":
        raise _fail(415, f"the request must be sent as application/json. Received: {kind!r}")
    data = await _body(request, MAX_JSON_BYTES, "the request")
    try:
        body = json.loads(data)
    except RecursionError:
        raise _fail(400, "the request body is not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # malformed, not UTF-8, or an integer of thousands of digits
        raise _fail(400, f"the request body is not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(body, dict):
        raise _fail(400, f"the request body must be a JSON object. Received: {type(body).__name__}")
    return body


def _query_int(query, key: str) -> int:
    try:
        return int(query[key])
    except ValueError:
        raise ValueError(f"{key} must be an integer. Received: {key}={query[key]!r}") from None
