"""Both-eyes head (seed 000): a linear classifier on the 64 + 64 features of a patient's two eyes.

For each eye the input is [features of this eye, features of the fellow eye] (128 values for paper17) and
the target is this eye's grade, so the head uses everything known about the patient and is scored per eye
like the base model. Features are standardised with the training set's mean and spread; the classifier is
multinomial logistic regression with a small L2 penalty, fitted by L-BFGS on the full set.

The head is saved as a small ``torch.save`` file that loads with ``weights_only=True``.
Synthetic patients (``synthpairs:P:SEED``): patient p has images 2p (left) and 2p+1 (right), with grades
correlated as in screening data (``retinaview.core.synthetic`` draws them when it can).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from retinaview.core.common.errors import CheckpointError, DataError
from retinaview.train import data as D

HEAD_FORMAT = "retinaview-patient-head"


# ---------------------------------------------------------------- synthetic patients


def parse_pairs(text: str) -> tuple[int, int]:
    """``synthpairs:P[:SEED]`` or ``synth:P[:SEED]`` -> (P patients, seed)."""
    body = text.split(":", 1)[1] if ":" in text else ""
    src = D.parse_source("synth:" + body)
    return src.n, src.seed


def patient_grades(seed: int) -> tuple[int, int]:
    """Correlated (left, right) grades of one synthetic patient."""
    rng = np.random.default_rng([seed, 0xE7E5])
    try:
        from retinaview.core.synthetic.grading import draw_patient_grades
    except ImportError:
        draw_patient_grades = None
    if draw_patient_grades is not None:
        left, right = draw_patient_grades(rng)
        return int(left), int(right)
    from retinaview.core.synthetic import DEFAULT_CLASS_FREQUENCIES

    left = int(rng.choice(D.NUM_GRADES, p=np.asarray(DEFAULT_CLASS_FREQUENCIES)))
    step = int(rng.choice([-1, 0, 0, 0, 1]))
    return left, int(np.clip(left + step, 0, D.NUM_GRADES - 1))


class SynthPairDataset(torch.utils.data.Dataset):
    """2P synthetic images of P patients; ``records`` carry patient and eye for pairing."""

    def __init__(self, patients: int, seed: int = 0, size: int = 640, chain: str = "paper") -> None:
        self.patients = patients
        self.seed = seed
        self.size = size
        self.chain = chain
        self.records = [
            D.Record(Path(f"synth-{seed}-{p}_{eye}"), -1, f"{p}_{eye}", str(p), eye)
            for p in range(patients)
            for eye in ("left", "right")
        ]

    def describe(self) -> str:
        return f"synthpairs:{self.patients}:{self.seed} at {self.size}px"

    def __len__(self) -> int:
        return 2 * self.patients

    def __getitem__(self, key) -> tuple[torch.Tensor, int]:
        _, i = D._key(key)
        p, side = divmod(i, 2)
        base = self.seed * D.SEED_STRIDE + p
        grade = patient_grades(base)[side]
        from retinaview.core.synthetic import generate

        eye = ("left", "right")[side]
        try:
            smp = generate(base * 2 + side, grade=grade, size=self.size, eye=eye)
        except TypeError:  # a generator without the eye argument
            smp = generate(base * 2 + side, grade=grade, size=self.size)
        image = D.preprocess_uint8(smp.image, self.chain, self.size)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), int(smp.grade)


# ---------------------------------------------------------------- the head


def pair_features(
    features: np.ndarray, grades: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Rows [left, right] -> left grade and [right, left] -> right grade for each (left, right) pair."""
    left, right = features[pairs[:, 0]], features[pairs[:, 1]]
    x = np.empty((2 * len(pairs), 2 * features.shape[1]), dtype=np.float32)
    x[0::2] = np.concatenate([left, right], 1)
    x[1::2] = np.concatenate([right, left], 1)
    y = np.empty(2 * len(pairs), dtype=np.int64)
    y[0::2] = grades[pairs[:, 0]]
    y[1::2] = grades[pairs[:, 1]]
    return x, y


@dataclass
class PatientHead:
    weight: np.ndarray  # (K, 2F)
    bias: np.ndarray  # (K,)
    mean: np.ndarray  # (2F,)
    std: np.ndarray  # (2F,)

    def logits(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.std
        return z @ self.weight.T + self.bias

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        lg = self.logits(x)
        lg = lg - lg.max(1, keepdims=True)
        e = np.exp(lg)
        return e / e.sum(1, keepdims=True)


def fit_head(
    x: np.ndarray, y: np.ndarray, num_classes: int = 5, l2: float = 1e-3, iterations: int = 500
) -> PatientHead:
    """Multinomial logistic regression by L-BFGS (scipy) on standardised features; deterministic."""
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


def _dataset(source: str, spec, labels: str | None):
    if source.startswith(("synth:", "synthpairs:")):
        n, seed = parse_pairs(source)
        return SynthPairDataset(n, seed, spec.input_size, spec.preprocessing)
    return D.build_dataset(
        D.parse_source(source, labels), size=spec.input_size, chain=spec.preprocessing
    )


def train_patient(
    model_path: str,
    data: str,
    out: str | os.PathLike,
    *,
    labels: str | None = None,
    val_fraction: float = 0.2,
    seed: int = 0,
    batch: int = 16,
    device: Any = None,
    workers: int | None = None,
    progress=None,
) -> dict[str, Any]:
    """Fit the both-eyes head on the paired patients of ``data``; report per-eye vs both-eyes QWK.

    ``synth:P:SEED`` means P synthetic patients (2P images). Patients are split ``val_fraction`` for the
    reported validation figures; the saved head is fitted on the training patients.
    """
    from retinaview.core.model_loading import load_model
    from retinaview.train.evaluate import pair_indices, predict
    from retinaview.train.metrics import quadratic_weighted_kappa
    from retinaview.train.trainer import default_workers

    t0 = time.monotonic()
    model = load_model(model_path, device)
    spec = model.spec
    dataset = _dataset(data, spec, labels)
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
