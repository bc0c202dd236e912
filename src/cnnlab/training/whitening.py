"""Patch whitening: a data-dependent start for the first convolution (--whiten).

The first layer of a CNN sees 3x3 patches of pixels, which are strongly correlated (neighbouring
pixels are alike). Starting its filters at the whitening transform of those patches, the
eigenvectors of their covariance scaled by 1/sqrt(eigenvalue), hands the next layer decorrelated,
equally scaled inputs from the first step, instead of waiting for the optimizer to find them.
airbench (Keller Jordan, 2024) freezes such a layer; here it is only the initial value, and it
trains on. Each direction is used with both signs, since a ReLU follows and would cut one half off.

    C = cov(patches),  C = V diag(lambda) V^T,  filter_k = v_k / sqrt(lambda_k + eps)
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.data import normalize

# Images whose patches estimate the covariance. 1,000 give 676,000 patches for a 9x9 covariance:
# the filters are within 1.5% of 50,000 images' (largest difference 0.06 on values up to 4.1), and
# the run's start-up pays 0.06 s instead of 0.99 s for 5,000 (page faults on the patch copy).
SAMPLE = 1_000
EPS = 1e-2  # keeps the near-constant directions (flat background) from being blown up


def whitening_filters(images: np.ndarray, kernel: int = 3) -> np.ndarray:
    """float32 (2 k^2, 1, k, k): the whitening filters of ``images`` (uint8 (N, 28, 28)) and their
    negatives, from the first ``SAMPLE`` images, normalised as training normalises them."""
    x = normalize(images[:SAMPLE])[:, 0].astype(np.float64)  # (N, 28, 28)
    patches = sliding_window_view(x, (kernel, kernel), axis=(1, 2)).reshape(-1, kernel * kernel)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))  # (k^2,), (k^2, k^2)
    filters = (eigenvectors.T / np.sqrt(eigenvalues + EPS)[:, None]).reshape(-1, 1, kernel, kernel)
    return np.concatenate([filters, -filters]).astype(np.float32)


def whitened(weight: np.ndarray, images: np.ndarray) -> np.ndarray:
    """A copy of a first conv's ``weight`` (C_out, 1, k, k) with its first filters set to the
    whitening filters (as many as fit); the others keep their random start."""
    c_out, c_in, kh, kw = weight.shape
    if c_in != 1 or kh != kw:
        raise ValueError(
            f"--whiten needs a first convolution over one channel with a square kernel, not {weight.shape}"
        )
    filters = whitening_filters(images, kh)[:c_out]
    out = np.array(weight, dtype=np.float32, copy=True)
    out[: len(filters)] = filters
    return out
