"""The explorer's web server: a Starlette app with a small JSON API, and the page as static files.

Requests name a run by its position on the command line (``/api/runs/0/...``), never by a path;
the only files served are the three in ``static/``, by name. Every error is a 4xx (or 500) with
a one-line JSON body ``{"error": "..."}``, and the server goes on serving. The API is listed in
the README (``cnnlab explore``).

Why Starlette on uvicorn: a small, maintained ASGI toolkit with routing, a test client and no
templating or ORM to carry; its synchronous work (each forward pass) runs in a thread pool,
so requests overlap while one image goes through the network.
"""

from __future__ import annotations

import json
import logging
from importlib import resources

from cnnlab.errors import CnnlabError
from cnnlab.inspect.explorer import compute, inputs, served
from cnnlab.inspect.explorer.guard import Guard, media_type
from cnnlab.inspect.explorer.served import Served
from cnnlab.inspect.explorer.workers import Workers

LOG = logging.getLogger("cnnlab.explore")

__all__ = ["create_app"]

MAX_JSON_BYTES = 64 * 1024  # an image is 1 KB of base64; nothing the page sends comes near
UPLOAD_TYPES = ("image/png", "image/jpeg", "application/octet-stream")  # what a browser calls a file
# The POST routes of one run: each takes a JSON object and answers what the function computes.
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


def create_app(runs: list[Served], allowed_hosts: set[str] | None = None, torch_threads: int | None = None):
    """The Starlette app, behind ``guard.Guard``. ``allowed_hosts`` (Host names) guards a loopback
    server against DNS rebinding (None: any name); ``torch_threads`` sets torch's threads in each
    worker thread (None: leave them)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.routing import Route

    api = _Api(runs, Workers(torch_threads))
    routes = [
        Route("/", api.page),
        Route("/static/{name}", api.static),
        Route("/api/runs", api.runs),
        Route("/api/runs/{run:int}/layers", api.layers),
        Route("/api/runs/{run:int}/test", api.test_image),
        Route("/api/image", api.upload, methods=["POST"]),
        Route("/api/runs/{run:int}/progress", api.progress),
        Route("/api/runs/{run:int}/filters", api.filters),
        Route("/api/runs/{run:int}/top", api.top_images),
        Route("/api/shape", api.shape),
        *[
            Route(f"/api/runs/{{run:int}}/{name}", api.computer(work), methods=["POST"])
            for name, work in POSTS.items()
        ],
    ]
    middleware = [Middleware(Guard, hosts=allowed_hosts)]
    handlers = {HTTPException: _http_error, Exception: _internal_error}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)


def _error(status: int, message: str):
    from starlette.responses import JSONResponse

    return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)


async def _http_error(request, exc):
    if exc.status_code == 404:
        return _error(404, f"not found: {request.url.path}" if exc.detail == "Not Found" else exc.detail)
    return _error(exc.status_code, exc.detail)


async def _internal_error(request, exc):
    # The server's terminal gets the whole story (a few times a minute at most), the page one line.
    LOG.error("internal error in %s %s", request.method, request.url.path, exc_info=exc)
    return _error(500, f"internal error ({type(exc).__name__}: {exc})")


def _fail(status: int, message: str):
    from starlette.exceptions import HTTPException

    return HTTPException(status, message)


class _Api:
    """The endpoints; each parses its request, hands the work to a thread and returns JSON."""

    def __init__(self, runs: list[Served], workers: Workers):
        self.served = runs
        self.workers = workers
        folder = resources.files(__package__) / "static"
        self.files = {name: (folder / name).read_bytes() for name in STATIC}

    def _run(self, request) -> Served:
        index = request.path_params["run"]
        if not 0 <= index < len(self.served):
            raise _fail(404, f"no run {index}; this server has runs 0..{len(self.served) - 1}")
        return self.served[index]

    async def page(self, request):
        return self._file("index.html")

    async def static(self, request):
        name = request.path_params["name"]
        if name not in STATIC or name == "index.html":
            raise _fail(404, f"not found: {request.url.path}")
        return self._file(name)

    def _file(self, name: str):
        from starlette.responses import Response

        headers = {"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
        return Response(self.files[name], media_type=STATIC[name], headers=headers)

    async def runs(self, request):
        from starlette.responses import JSONResponse

        return JSONResponse({"runs": [run.as_json(i) for i, run in enumerate(self.served)]})

    async def layers(self, request):
        from starlette.responses import JSONResponse

        from cnnlab.data.dataset import PIXEL_MAX

        run = self._run(request)
        net = run.network
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
                    "mean": list(run.dataset.mean),
                    "std": list(run.dataset.std),
                },
                "layers": [step.as_json() for step in net.steps],
            }
        )

    async def test_image(self, request):
        from starlette.responses import JSONResponse

        run = self._run(request)
        if run.tests is None:
            raise _fail(404, f"no test images for run {request.path_params['run']}: {run.tests_note}")
        query = request.query_params
        chosen = [key for key in ("index", "class", "mistake") if key in query]
        if len(chosen) != 1:
            raise _fail(400, "give exactly one of ?index=N, ?class=K (with &after=I) or ?mistake=SEED")
        try:
            answer = await self.workers.run(
                compute.pick_test_image, run, chosen[0], {k: _query_int(query, k) for k in query}
            )
        except ValueError as exc:
            raise _fail(400, str(exc)) from None
        return JSONResponse(answer)

    async def upload(self, request):
        from starlette.responses import JSONResponse

        invert = {"auto": None, "yes": True, "no": False}.get(
            request.query_params.get("invert", "auto"), "bad"
        )
        if invert == "bad":
            raise _fail(
                400, f"invert must be auto, yes or no. Received: {request.query_params.get('invert')!r}"
            )
        kind = media_type(request.headers)
        if kind not in UPLOAD_TYPES:
            raise _fail(415, f"the upload must be sent as {', '.join(UPLOAD_TYPES)}. Received: {kind!r}")
        try:
            index = _query_int(request.query_params, "run") if "run" in request.query_params else 0
        except ValueError as exc:
            raise _fail(400, str(exc)) from None
        if not 0 <= index < len(self.served):
            raise _fail(404, f"no run {index}; this server has runs 0..{len(self.served) - 1}")
        dataset = self.served[index].dataset  # the photo is prepared as that run's data draws
        data = await _body(request, inputs.MAX_UPLOAD_BYTES, "the upload")
        try:
            prepared = await self.workers.decode(inputs.prepare_upload, data, dataset, invert)
        except CnnlabError as exc:
            raise _fail(400, str(exc)) from None
        return JSONResponse({"image": inputs.encode_image(prepared.image), "inverted": prepared.inverted})

    def computer(self, work):
        """The endpoint for ``work(run, body)``: parse the JSON body, compute on a worker, answer."""

        async def endpoint(request):
            run, body = self._run(request), await _json(request)
            return await _compute(self.workers, work, run, body)

        return endpoint

    async def progress(self, request):
        """The run's epochs so far; loads a new checkpoint first if one landed (a run still training)."""
        from starlette.responses import JSONResponse

        run = self._run(request)
        return JSONResponse(await self.workers.run(served.progress, run))

    async def filters(self, request):
        from starlette.responses import JSONResponse

        try:
            return JSONResponse(compute.filters(self._run(request)))
        except ValueError as exc:
            raise _fail(400, str(exc)) from None

    async def top_images(self, request):
        """?layer=L&channel=C: the test images that excite that channel most (computed once)."""
        from starlette.responses import JSONResponse

        run, query = self._run(request), request.query_params
        if run.tests is None:
            raise _fail(404, f"no test images for run {request.path_params['run']}: {run.tests_note}")
        if set(query) != {"layer", "channel"}:
            raise _fail(400, "give ?layer=L&channel=C")
        try:
            wanted = {k: _query_int(query, k) for k in ("layer", "channel")}
            return JSONResponse(await self.workers.run(compute.top_images, run, wanted))
        except ValueError as exc:
            raise _fail(400, str(exc)) from None

    async def shape(self, request):
        """?size=&kernel=&padding=&stride=&dilation=: one side of a convolution's output, by
        cnnlab.shapes' formula (the widget's arithmetic), or the error it gives."""
        from starlette.responses import JSONResponse

        from cnnlab import shapes

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


async def _compute(workers: Workers, work, run: Served, body: dict):
    """``work(run, body)`` on a worker, JSON encoding included; a ValueError (bad field, out of
    range) is a 400."""
    try:
        return await workers.run(_respond, work, run, body)
    except ValueError as exc:
        raise _fail(400, str(exc)) from None


def _respond(work, run: Served, body: dict):
    from starlette.responses import JSONResponse, Response

    answer = work(run, body)
    if isinstance(answer, bytes):  # already JSON
        return Response(answer, media_type="application/json")
    return JSONResponse(answer)


async def _body(request, limit: int, what: str) -> bytes:
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


async def _json(request) -> dict:
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
