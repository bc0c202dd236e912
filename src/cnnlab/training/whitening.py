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

from cnnlab.data.dataset import Dataset

# Images whose patches estimate the covariance: a thousand give hundreds of thousands of patches for
# a (C k^2)-square covariance, so the filters barely differ from the whole training set's, for a
# start-up of a fraction of a second (the docs' results page).
SAMPLE = 1_000
EPS = 1e-2  # keeps the near-constant directions (flat background) from being blown up


def whitening_filters(x: np.ndarray, kernel: int = 3) -> np.ndarray:
    """float32 (2 C k^2, C, k, k): the whitening filters of normalised images ``x`` (N, C, H, W), each
    direction with both signs, in the order of rising eigenvalue."""
    x = np.asarray(x, np.float64)
    channels = x.shape[1]
    windows = sliding_window_view(x, (kernel, kernel), axis=(2, 3))  # (N, C, H', W', k, k)
    patches = windows.transpose(0, 2, 3, 1, 4, 5).reshape(-1, channels * kernel * kernel)  # (P, C k^2)
    eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))  # rising eigenvalues
    filters = (eigenvectors.T / np.sqrt(eigenvalues + EPS)[:, None]).reshape(-1, channels, kernel, kernel)
    return np.concatenate([filters, -filters]).astype(np.float32)


def whitened(weight: np.ndarray, dataset: Dataset, images: np.ndarray) -> np.ndarray:
    """A copy of a first conv's ``weight`` (C_out, C, k, k) with its first filters set to the whitening
    filters of ``images`` (uint8 (N, C, H, W), the first ``SAMPLE`` of them, normalised as training
    normalises them); the others keep their random start. When not every direction fits with both
    signs, the directions of largest variance are kept."""
    c_out, c_in, kh, kw = weight.shape
    if c_in != dataset.channels or kh != kw:
        raise ValueError(
            f"--whiten needs a first convolution over the images' {dataset.channels} channel(s) with a "
            f"square kernel, not {weight.shape}"
        )
    filters = whitening_filters(dataset.normalize(images[:SAMPLE]), kh)
    directions = len(filters) // 2
    if len(filters) > c_out:  # keep the largest-variance directions, both signs of each
        keep = max(1, c_out // 2)
        filters = np.concatenate([filters[directions - keep : directions], filters[-keep:]])
    out = np.array(weight, dtype=np.float32, copy=True)
    out[: len(filters)] = filters
    return out
