"""``cnnlab explore``: an interactive page inside trained runs, served on 127.0.0.1.

Modules, lowest first: ``network`` (every layer's output for one image, from the model the run
loader built, in evaluation mode; 8-bit codes for the page), ``closeup`` (one convolution or
pooling map up close: sums of products, windows, receptive fields), ``inputs`` (images from the
test set, an upload or the page's canvas), ``served`` (the runs, and what each API call computes),
``server`` (the Starlette app: routes, limits, errors; binding and serving) and
``static/`` (the page: HTML, CSS and plain JavaScript, nothing fetched from the network).
Nothing is imported here, so ``import cnnlab.inspect.explorer`` needs neither Starlette nor torch.
"""

__all__ = ["network", "closeup", "inputs", "served", "server"]
