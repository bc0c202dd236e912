"""``cnnlab explore``: an interactive page inside trained runs, served on 127.0.0.1.

Modules, lowest first: ``network`` (every layer's output for one image, from the model the run
loader built, in evaluation mode; 8-bit codes for the page), ``closeup`` (one convolution or
pooling map up close: sums of products, windows, receptive fields, the animation's sums),
``explain`` (activations, batch norm, dense neurons and residual sums with their numbers),
``exciting`` (each channel's top test images, cached in the run directory), ``inputs`` (images
from the test set, an upload or the page's canvas), ``served`` (the runs, followed while they
train), ``compute`` (what each API call computes), ``guard`` (Host, Origin and Sec-Fetch-Site
checks; bounded logging), ``workers`` (the threads requests compute on), ``server`` (the Starlette
app: routes, errors), ``listen`` (the socket, uvicorn with timeouts and a connection limit) and
``static/`` (the page: HTML, CSS and plain JavaScript modules, nothing fetched from the network).
Nothing is imported here, so ``import cnnlab.inspect.explorer`` needs neither Starlette nor torch.
"""

__all__ = [
    "network",
    "closeup",
    "explain",
    "exciting",
    "inputs",
    "served",
    "compute",
    "guard",
    "workers",
    "server",
    "listen",
]
