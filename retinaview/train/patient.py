"""Both-eyes head: a linear classifier on the 64 + 64 pooled features of a patient's two eyes.

For each eye the input is [features of this eye, features of the fellow eye] (128 values for paper17) and
the target is this eye's grade, so the head uses everything known about the patient and is scored per eye
like the base model. Features are standardised with the training set's mean and spread; the classifier is
multinomial logistic regression with a small L2 penalty, fitted by L-BFGS on the full set.

The head is saved as a small ``torch.save`` file that loads with ``weights_only=True``. Synthetic patients
(``synth:P:SEED``) are `retinaview.train.data.SynthPairDataset`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from retinaview.core.common.errors import CheckpointError, DataError
from retinaview.train.data import default_workers
from retinaview.train.metrics import quadratic_weighted_kappa
from retinaview.train.predict import dataset_for_model, pair_features, pair_indices, predict

HEAD_FORMAT = "retinaview-patient-head"


# ---------------------------------------------------------------- the head


@dataclass
class PatientHead:
    """A fitted both-eyes head: logits = ((x - mean) / std) @ weight.T + bias.

    Attributes
    ----------
    weight : numpy.ndarray
        (K, 2F) class weights.
    bias : numpy.ndarray
        (K,) class biases.
    mean, std : numpy.ndarray
        (2F,) standardisation of the inputs, from the training rows.
    """

    weight: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(M, K) logits of (M, 2F) rows made by `retinaview.train.predict.pair_features`."""
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return z @ self.weight.T + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(M, K) class probabilities (softmax of `logits`) of (M, 2F) rows."""
        lg = self.logits(x)
        lg = lg - lg.max(1, keepdims=True)
        e = np.exp(lg)
        return e / e.sum(1, keepdims=True)


def fit_head(
    x: np.ndarray, y: np.ndarray, num_classes: int = 5, l2: float = 1e-3, iterations: int = 500
) -> PatientHead:
    """Fit a both-eyes head: multinomial logistic regression by L-BFGS on standardised features.

    Parameters
    ----------
    x : numpy.ndarray
        (M, 2F) rows from `retinaview.train.predict.pair_features`.
    y : numpy.ndarray
        (M,) grades.
    num_classes : int
        K.
    l2 : float
        Penalty on the squared weights (not the biases).
    iterations : int
        Most L-BFGS iterations.

    Returns
    -------
    PatientHead
        Deterministic for given inputs.
    """
    from scipy.optimize import minimize

    mean = x.mean(0)
    std = x.std(0) + 1e-6
    z = (np.asarray(x, dtype=np.float64) - mean) / std
    n, f = z.shape
    onehot = np.eye(num_classes)[np.asarray(y, dtype=np.int64)]

    def loss_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = theta[: num_classes * f].reshape(num_classes, f)
        b = theta[num_classes * f :]
        lg = z @ w.T + b
        lg -= lg.max(1, keepdims=True)
        p = np.exp(lg)
        p /= p.sum(1, keepdims=True)
        loss = -np.log(p[onehot.astype(bool)] + 1e-300).mean() + l2 * (w**2).sum()
        d = (p - onehot) / n
        gw = d.T @ z + 2 * l2 * w
        return float(loss), np.concatenate([gw.ravel(), d.sum(0)])

    theta0 = np.zeros(num_classes * (f + 1))
    res = minimize(loss_grad, theta0, jac=True, method="L-BFGS-B", options={"maxiter": iterations})
    w = res.x[: num_classes * f].reshape(num_classes, f)
    return PatientHead(w, res.x[num_classes * f :].copy(), mean, std)


def save_head(path: str | os.PathLike, head: PatientHead, meta: dict[str, Any]) -> Path:
    """Write ``head`` and ``meta`` (plain values) atomically to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": HEAD_FORMAT,
        "version": 1,
        "weight": torch.as_tensor(head.weight),
        "bias": torch.as_tensor(head.bias),
        "mean": torch.as_tensor(head.mean),
        "std": torch.as_tensor(head.std),
        "meta": meta,
    }
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_head(
    path: str | os.PathLike, num_classes: int | None = None, features: int | None = None
) -> PatientHead:
    """Read a both-eyes head file; every field is checked (tensors of consistent shapes, finite, positive
    spread) and, when given, against the model's ``num_classes`` and pooled ``features`` per eye."""
    from retinaview.core.checkpoint import torch_load
    from retinaview.core.validate import describe

    name = str(path)
    payload = torch_load(path, what="both-eyes head file")
    if not isinstance(payload, dict) or payload.get("format") != HEAD_FORMAT:
        raise CheckpointError(f"{name}: not a both-eyes head file (no '{HEAD_FORMAT}' header)")
    arrays = {}
    for key, ndim in (("weight", 2), ("bias", 1), ("mean", 1), ("std", 1)):
        value = payload.get(key)
        if (
            not isinstance(value, torch.Tensor)
            or not value.is_floating_point()
            or value.ndim != ndim
            or value.numel() == 0
        ):
            found = "nothing" if value is None else describe(value)
            raise CheckpointError(
                f"{name}: field {key!r}: expected a {ndim}-d floating-point tensor, found {found}"
            )
        if not bool(torch.isfinite(value).all()):
            raise CheckpointError(
                f"{name}: field {key!r}: expected finite numbers, found NaN or infinite values"
            )
        arrays[key] = value.double().numpy()
    k, f2 = arrays["weight"].shape
    for key, want in (("bias", k), ("mean", f2), ("std", f2)):
        if arrays[key].shape != (want,):
            raise CheckpointError(
                f"{name}: field {key!r}: expected {want} values to match 'weight' {k}x{f2}, "
                f"found {arrays[key].shape[0]}"
            )
    if not (arrays["std"] > 0).all():
        raise CheckpointError(f"{name}: field 'std': expected positive numbers")
    if num_classes is not None and k != num_classes:
        raise CheckpointError(
            f"{name}: field 'weight': expected {num_classes} classes like the model, found {k}"
        )
    if features is not None and f2 != 2 * features:
        raise CheckpointError(
            f"{name}: field 'weight': expected {2 * features} inputs (two eyes of {features} "
            f"features), found {f2}"
        )
    return PatientHead(arrays["weight"], arrays["bias"], arrays["mean"], arrays["std"])


# ---------------------------------------------------------------- train-patient


def train_patient(
    model_path: str,
    data: str,
    out: str | os.PathLike,
    *,
    labels: str | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    batch: int = 16,
    device: str | torch.device | None = None,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Fit the both-eyes head on the paired patients of ``data``; report per-eye against both-eyes QWK.

    Parameters
    ----------
    model_path : str
        Checkpoint file or ``"default"``; the model must expose pooled features (paper17).
    data : str
        A folder with EyePACS ``{patient}_left``/``{patient}_right`` images, or ``synth:P:SEED`` for P
        synthetic patients (2P images).
    out : str or os.PathLike
        Where to write the head.
    labels : str, optional
        The folder's labels CSV when it is not found by name.
    val_fraction : float
        Share of patients held out for the reported validation figures (with at least 10 patients); the
        saved head is fitted on the others.
    seed : int
        Seed of the patient split.
    batch, device, workers, progress
        As in `retinaview.train.predict.predict`.

    Returns
    -------
    dict
        ``train_patients``, ``val_patients``, ``{train,val}_per_eye_qwk``, ``{train,val}_both_eyes_qwk``,
        ``out`` and ``seconds``.
    """
    from retinaview.core.model_loading import load_model

    t0 = time.monotonic()
    model = load_model(model_path, device)
    spec = model.spec
    dataset = dataset_for_model(data, spec, labels, synth_as_pairs=True)
    if workers is None:
        workers = default_workers() if len(dataset) > 4 * batch else 0
    device = next(model.parameters()).device
    pred = predict(
        model, spec, dataset, batch=batch, device=device, workers=workers, progress=progress
    )
    if pred.features is None:
        raise DataError(
            f"{model_path}: {spec.arch} exposes no pooled features for a both-eyes head"
        )
    pairs = pair_indices(pred.patients, pred.eyes)
    if len(pairs) < 4:
        raise DataError(
            f"{data}: {len(pairs)} patients with both eyes; the head needs {{patient}}_left and "
            "{patient}_right images of at least 4 patients"
        )
    rng = np.random.default_rng([seed, 0xCAFE])
    order = rng.permutation(len(pairs))
    n_val = int(round(val_fraction * len(pairs))) if len(pairs) >= 10 else 0
    val_pairs, train_pairs = pairs[order[:n_val]], pairs[order[n_val:]]
    k = spec.num_classes
    x, y = pair_features(pred.features, pred.grades, train_pairs)
    head = fit_head(x, y, k)
    report: dict[str, Any] = {"train_patients": len(train_pairs), "val_patients": len(val_pairs)}
    for name, part in (("train", train_pairs), ("val", val_pairs)):
        if len(part) == 0:
            continue
        xp, yp = pair_features(pred.features, pred.grades, part)
        base = pred.probs[part.ravel()].argmax(1)
        report[f"{name}_per_eye_qwk"] = quadratic_weighted_kappa(yp, base, k)
        report[f"{name}_both_eyes_qwk"] = quadratic_weighted_kappa(
            yp, head.predict_proba(xp).argmax(1), k
        )
    meta = {
        "model": str(model_path),
        "arch": spec.arch,
        "data": data,
        "seed": seed,
        "features": int(pred.features.shape[1]),
        "metrics": report,
    }
    save_head(out, head, meta)
    report["out"] = str(out)
    report["seconds"] = time.monotonic() - t0
    return report
