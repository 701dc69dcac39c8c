"""Evaluate a grader on a data source: QWK, accuracy, confusion, per-class and referable-DR figures.

``evaluate(model, data)`` runs the model over every image once (no augmentation) and returns the report of
`retinaview.train.metrics.grading_report`, plus a per-patient part when the data pairs the two eyes of
patients (EyePACS names ``{patient}_{left|right}``, or ``synthpairs:P:SEED``): the per-eye QWK of the model,
the per-patient QWK (a patient's grade = the worse eye), and with a both-eyes head the QWK of the head.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from retinaview.core.models.registry import ModelSpec
from retinaview.train import data as D
from retinaview.train.metrics import grading_report, quadratic_weighted_kappa


@dataclass
class Predictions:
    grades: np.ndarray  # (N,) true grades
    probs: np.ndarray  # (N, K) softmax
    features: np.ndarray | None  # (N, F) penultimate features when the model exposes them
    patients: list[str] | None = None
    eyes: list[str | None] | None = None


def features_and_logits(model: nn.Module, spec: ModelSpec, x: torch.Tensor):
    """(features or None, logits): paper17-style models expose ``features(x)`` and a classifier module."""
    feats_fn = getattr(model, "features", None)
    if callable(feats_fn) and not isinstance(feats_fn, nn.Module):
        f = feats_fn(x)
        return f, model.get_submodule(spec.classifier)(f)
    return None, model(x)


def build_eval_dataset(source: str, spec: ModelSpec, labels: str | None = None):
    """Dataset of a ``synth:N:SEED``, ``synthpairs:P:SEED`` or folder source for ``spec``'s input."""
    if source.startswith("synthpairs:"):
        from retinaview.train.patient import SynthPairDataset, parse_pairs

        n, seed = parse_pairs(source)
        return SynthPairDataset(n, seed, spec.input_size, spec.preprocessing)
    return D.build_dataset(
        D.parse_source(source, labels), size=spec.input_size, chain=spec.preprocessing
    )


def predict(
    model: nn.Module,
    spec: ModelSpec,
    dataset,
    *,
    batch: int = 16,
    device: torch.device | None = None,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Predictions:
    """Run ``model`` (eval mode) over ``dataset``; images normalised with the spec's mean/std."""
    from retinaview.train.trainer import _loader

    device = device or next(model.parameters()).device
    model.eval()
    sampler = D.EpochBatchSampler(len(dataset), batch, shuffle=False, drop_last=False)
    loader = _loader(dataset, sampler, workers, device)
    mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
    grades, probs, feats = [], [], []
    done = 0
    with torch.inference_mode():
        for xb, yb in D.guarded(loader):
            x = (xb.to(device).float() / 255.0 - mean) / std
            f, logits = features_and_logits(model, spec, x)
            probs.append(logits.float().softmax(1).cpu().numpy())
            grades.append(yb.numpy())
            if f is not None:
                feats.append(f.float().cpu().numpy())
            done += len(yb)
            if progress is not None:
                progress(done, len(dataset))
    records = getattr(dataset, "records", None)
    return Predictions(
        np.concatenate(grades).astype(np.int64),
        np.concatenate(probs),
        np.concatenate(feats) if feats else None,
        [r.patient for r in records] if records else None,
        [r.eye for r in records] if records else None,
    )


def pair_indices(patients: list[str] | None, eyes: list[str | None] | None) -> np.ndarray:
    """(P, 2) indices of (left, right) for patients with both eyes present."""
    if not patients or not eyes:
        return np.zeros((0, 2), dtype=np.int64)
    seen: dict[str, dict[str, int]] = {}
    for i, (p, e) in enumerate(zip(patients, eyes, strict=True)):
        if e in ("left", "right"):
            seen.setdefault(p, {})[e] = i
    pairs = [(d["left"], d["right"]) for d in seen.values() if len(d) == 2]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def patient_report(pred: Predictions, head=None) -> dict[str, Any] | None:
    """Per-eye vs per-patient QWK over the paired patients; with ``head`` the both-eyes head's QWK."""
    pairs = pair_indices(pred.patients, pred.eyes)
    if len(pairs) == 0:
        return None
    k = pred.probs.shape[1]
    eye_idx = pairs.ravel()
    t = pred.grades[eye_idx]
    p = pred.probs[eye_idx].argmax(1)
    worse_t = pred.grades[pairs].max(1)
    out: dict[str, Any] = {
        "pairs": len(pairs),
        "per_eye_qwk": quadratic_weighted_kappa(t, p, k),
        "per_patient_qwk": quadratic_weighted_kappa(worse_t, pred.probs[pairs].argmax(2).max(1), k),
    }
    if head is not None and pred.features is not None:
        from retinaview.train.patient import pair_features

        x, y = pair_features(pred.features, pred.grades, pairs)
        hp = head.predict_proba(x)
        out["both_eyes_qwk"] = quadratic_weighted_kappa(y, hp.argmax(1), k)
        hp_pairs = hp.argmax(1).reshape(-1, 2)
        out["both_eyes_per_patient_qwk"] = quadratic_weighted_kappa(worse_t, hp_pairs.max(1), k)
    return out


def evaluate(
    model: str | os.PathLike | nn.Module = "default",
    data: str = "synth:100:2000",
    *,
    labels: str | None = None,
    batch: int = 16,
    device: Any = None,
    workers: int | None = None,
    head_path: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Grade every image of ``data`` with ``model`` (a path, ``default``, or a loaded model with ``.spec``)."""
    from retinaview.core.model_loading import load_model

    t0 = time.monotonic()
    if not isinstance(model, nn.Module):
        model = load_model(model, device)
    spec: ModelSpec = model.spec
    head = None
    if head_path:
        # Checked before the grading starts: a bad head file should not cost a whole evaluation.
        from retinaview.train.patient import load_head

        classifier = model.get_submodule(spec.classifier)
        head = load_head(head_path, spec.num_classes, getattr(classifier, "in_features", None))
    dataset = build_eval_dataset(data, spec, labels)
    if workers is None:
        from retinaview.train.trainer import default_workers

        workers = default_workers() if len(dataset) > 4 * batch else 0
    device = next(model.parameters()).device
    pred = predict(
        model, spec, dataset, batch=batch, device=device, workers=workers, progress=progress
    )
    report = grading_report(pred.grades, pred.probs, spec.num_classes)
    patients = patient_report(pred, head)
    if patients is not None:
        report["patients"] = patients
    report["model"] = spec.source or spec.arch
    report["data"] = data
    report["seconds"] = time.monotonic() - t0
    return report
