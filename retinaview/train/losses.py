"""Training losses: the weighted-kappa loss log(1 - kappa) on the batch's softmax, and cross-entropy.

Weighted-kappa loss (as trained in de la Torre, Valls and Puig, arXiv:1712.08107): with p the (N, K) softmax, t the one-hot targets and quadratic weights
W_ij = (i - j)^2 / (K - 1)^2,

    observed  O = sum_n sum_j W[t_n, j] p_nj
    expected  E = sum_ij W_ij (sum_n t_ni)(sum_n p_nj) / N
    kappa = 1 - O / E,   loss = log(1 - kappa) = log O - log E

A batch whose targets are all one grade has O == E for any prediction (kappa 0, no gradient); class
balancing avoids such batches, and ``kappa+ce`` adds a cross-entropy term that always has a gradient.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

LOSSES = ("kappa", "ce", "kappa+ce")


def quadratic_weights(
    num_classes: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """(K, K) quadratic disagreement weights W_ij = (i - j)^2 / (K - 1)^2."""
    idx = torch.arange(num_classes, device=device, dtype=dtype)
    return (idx[:, None] - idx[None, :]) ** 2 / max(num_classes - 1, 1) ** 2


def weighted_kappa_loss(
    logits: torch.Tensor, targets: torch.Tensor, eps: float = 1e-10
) -> torch.Tensor:
    """log(1 - kappa) of the soft confusion between the targets and the softmax of the logits.

    Parameters
    ----------
    logits : torch.Tensor
        (N, K) logits.
    targets : torch.Tensor
        (N,) integer grades.
    eps : float
        Keeps the logarithms finite.

    Returns
    -------
    torch.Tensor
        Scalar loss; lower is better, -inf at perfect agreement without ``eps``.
    """
    logits = logits.float()
    n, k = logits.shape
    p = logits.softmax(1)
    w = quadratic_weights(k, logits.device)
    onehot = functional.one_hot(targets.long(), k).to(p.dtype)
    observed = (w[targets.long()] * p).sum()
    expected = (w * torch.outer(onehot.sum(0), p.sum(0))).sum() / n
    return torch.log(observed + eps) - torch.log(expected + eps)


class KappaLoss(nn.Module):
    """`weighted_kappa_loss` as a module."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss of (N, K) logits against (N,) grades."""
        return weighted_kappa_loss(logits, targets)


class KappaCELoss(nn.Module):
    """log(1 - kappa) plus ``ce_weight`` times cross-entropy."""

    def __init__(self, ce_weight: float = 1.0) -> None:
        super().__init__()
        self.ce_weight = ce_weight

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Loss of (N, K) logits against (N,) grades."""
        return weighted_kappa_loss(logits, targets) + self.ce_weight * functional.cross_entropy(
            logits.float(), targets.long()
        )


def build_loss(name: str) -> nn.Module:
    """The loss called ``name`` (one of `LOSSES`); `ValueError` for another name."""
    if name == "kappa":
        return KappaLoss()
    if name == "ce":
        return nn.CrossEntropyLoss()
    if name == "kappa+ce":
        return KappaCELoss()
    raise ValueError(f"unknown loss {name!r} (known: {', '.join(LOSSES)})")
