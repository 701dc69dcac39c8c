"""Map hidden-layer scores to input space with a 2-D Gaussian receptive-field prior (de la Torre, Valls and Puig, arXiv:1712.08107).

A unit at grid position i of a layer stands for its receptive field: size ``rf`` pixels, centred at
``offset + i * jump``. Its score is spread over that field as a Gaussian with ``sigma = sigma_factor * rf``
(0.25: the field spans +-2 sigma), truncated to the field and to the image, and renormalised so that all of the
score lands there. The 2-D weight is a product of two 1-D weights, so mapping a whole layer is two matrix
products ``G_y @ M @ G_x.T``, and every column of ``G`` sums to 1: mass is conserved exactly.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

DEFAULT_SIGMA_FACTOR = 0.25


@lru_cache(maxsize=256)
def _gaussian_matrix_np(
    n_units: int, size: int, rf: float, jump: float, offset: float, sigma_factor: float
) -> np.ndarray:
    centres = offset + jump * np.arange(n_units, dtype=np.float64)
    coords = np.arange(size, dtype=np.float64)
    d = coords[:, None] - centres[None, :]
    sigma = max(sigma_factor * rf, 1e-6)
    w = np.exp(-0.5 * (d / sigma) ** 2)
    half = (rf - 1) / 2
    w[np.abs(d) > half + 1e-9] = 0.0
    col = w.sum(0)
    # A unit whose field lies wholly outside the image (possible with padding) keeps its score at the
    # nearest pixel, so nothing is lost.
    empty = col <= 0
    if empty.any():
        nearest = np.clip(np.rint(centres[empty]), 0, size - 1).astype(int)
        w[:, empty] = 0.0
        w[nearest, np.nonzero(empty)[0]] = 1.0
        col = w.sum(0)
    w /= col
    w.setflags(write=False)
    return w


def gaussian_matrix(
    n_units: int,
    size: int,
    rf: float,
    jump: float,
    offset: float,
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
) -> np.ndarray:
    """(size, n_units) weights: column i spreads unit i over the pixels of its receptive field; sums to 1."""
    return _gaussian_matrix_np(
        int(n_units), int(size), float(rf), float(jump), float(offset), float(sigma_factor)
    )


@lru_cache(maxsize=64)
def linear_mass_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) linear-interpolation weights from one grid onto another; every column sums to 1."""
    centres = (np.arange(n_in) + 0.5) * n_out / n_in - 0.5
    lo = np.floor(centres).astype(int)
    frac = centres - lo
    w = np.zeros((n_out, n_in))
    for i in range(n_in):
        for pos, weight in ((lo[i], 1 - frac[i]), (lo[i] + 1, frac[i])):
            w[np.clip(pos, 0, n_out - 1), i] += weight
    w.setflags(write=False)
    return w


def _is_tensor(a: Any) -> bool:
    # numpy-only callers (the desktop app) never import torch: recognise a tensor without importing it.
    return type(a).__module__.startswith("torch")


def map_to_input(
    maps: Any,
    rf: tuple[float, float] | float,
    jump: tuple[float, float] | float,
    offset: tuple[float, float] | float,
    size: tuple[int, int],
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
) -> Any:
    """Spread (..., h, w) hidden-space maps to (..., H, W) input space; each map keeps its sum exactly.

    The one implementation of the mapping: ``G_y @ M @ G_x.T`` with the weights of `gaussian_matrix`. torch
    tensors (the explanation, on its device) use dense products; numpy arrays (the viewer's inspector, without
    torch) use sparse ones, since a unit touches only its field's rows and columns: a 640 px layer of 3 px
    fields then costs a few passes over the image instead of a dense 640 x 640 product.

    Parameters
    ----------
    maps : numpy.ndarray or torch.Tensor
        (..., h, w) one map per leading index.
    rf, jump, offset : float or (float, float)
        Receptive field size, jump and centre of unit 0, per axis (y, x) or one value for both.
    size : (int, int)
        (H, W) of the input.
    sigma_factor : float
        The Gaussian's sigma as a fraction of the field.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        (..., H, W), of the input's kind; numpy results are float32 for float32 (or narrower) maps, else
        float64.
    """
    rf_y, rf_x = _pair(rf)
    j_y, j_x = _pair(jump)
    o_y, o_x = _pair(offset)
    h, w = maps.shape[-2:]
    if _is_tensor(maps):
        gy = maps.new_tensor(gaussian_matrix(h, size[0], rf_y, j_y, o_y, sigma_factor))
        gx = maps.new_tensor(gaussian_matrix(w, size[1], rf_x, j_x, o_x, sigma_factor))
        return gy @ maps @ gx.T
    maps = np.asarray(maps)
    dtype = np.dtype(np.result_type(maps.dtype, np.float32))
    gy_s = _sparse_matrix(h, size[0], rf_y, j_y, o_y, sigma_factor, dtype.str)
    gx_s = _sparse_matrix(w, size[1], rf_x, j_x, o_x, sigma_factor, dtype.str)
    flat = maps.astype(dtype, copy=False).reshape(-1, h, w)
    out = np.empty((flat.shape[0], *size), dtype=dtype)
    for k, m in enumerate(flat):
        out[k] = (gx_s @ (gy_s @ m).T).T
    return out.reshape(*maps.shape[:-2], *size)


@lru_cache(maxsize=128)
def _sparse_matrix(
    n_units: int, size: int, rf: float, jump: float, offset: float, sigma_factor: float, dtype: str
):
    from scipy import sparse

    return sparse.csr_matrix(
        gaussian_matrix(n_units, size, rf, jump, offset, sigma_factor).astype(dtype)
    )


def spread_constant(
    values: Any,
    size: tuple[int, int],
    sigma_factor: float = DEFAULT_SIGMA_FACTOR,
):
    """Spread one value per class (e.g. the output bias) as one unit whose field is the whole image."""
    h, w = size
    rf = float(max(h, w))
    if _is_tensor(values):
        maps = values.reshape(-1, 1, 1)
    else:
        maps = np.asarray(values).reshape(-1, 1, 1)
    return map_to_input(maps, rf, 1, ((h - 1) / 2, (w - 1) / 2), size, sigma_factor)


def _pair(v) -> tuple[float, float]:
    if isinstance(v, (tuple, list, np.ndarray)):
        return float(v[0]), float(v[1])
    return float(v), float(v)
