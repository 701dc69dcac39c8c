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
from typing import Any

import torch
from torch import nn

from retinaview.core.models.registry import ModelSpec
from retinaview.train.data import default_workers
from retinaview.train.metrics import grading_report, quadratic_weighted_kappa
from retinaview.train.patient import PatientHead, load_head
from retinaview.train.predict import (
    Predictions,
    dataset_for_model,
    pair_features,
    pair_indices,
    predict,
)


def patient_report(pred: Predictions, head: PatientHead | None = None) -> dict[str, Any] | None:
    """Per-eye against per-patient QWK over the patients with both eyes present.

    Parameters
    ----------
    pred : Predictions
        Predictions with patients and eyes.
    head : PatientHead, optional
        A both-eyes head; adds its per-eye and per-patient QWK (needs ``pred.features``).

    Returns
    -------
    dict or None
        ``pairs``, ``per_eye_qwk``, ``per_patient_qwk`` (a patient's grade is the worse eye), and with a head
        ``both_eyes_qwk`` and ``both_eyes_per_patient_qwk``; None when no patient has both eyes.
    """
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
    device: str | torch.device | None = None,
    workers: int | None = None,
    head_path: str | os.PathLike | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Grade every image of ``data`` with ``model`` and report the grading figures.

    Parameters
    ----------
    model : str, os.PathLike or torch.nn.Module
        A checkpoint path, ``"default"`` (the bundled model), or a loaded model with a ``spec``.
    data : str
        ``synth:N:SEED``, ``synthpairs:P:SEED`` or a folder with a labels CSV.
    labels : str, optional
        The folder's labels CSV when it is not found by name.
    batch : int
        Images per forward pass.
    device : str or torch.device, optional
        Where to load ``model`` when it is a path; default CUDA when present.
    workers : int, optional
        Data-loader processes; default one on small machines, none for small data sets.
    head_path : str or os.PathLike, optional
        A both-eyes head from ``retinaview train-patient``.
    progress : callable, optional
        Called with (images done, total) after every batch.

    Returns
    -------
    dict
        `retinaview.train.metrics.grading_report` (``qwk``, ``accuracy``, ``confusion``, ``per_class`` with
        each grade's recall as ``sensitivity``, ``referable``, ``n``), ``patients`` when the data pairs eyes,
        ``model``, ``data`` and ``seconds``.
    """
    from retinaview.core.model_loading import load_model

    t0 = time.monotonic()
    if not isinstance(model, nn.Module):
        model = load_model(model, device)
    spec: ModelSpec = model.spec
    head = None
    if head_path:
        # Read before the grading starts: a bad head file should not cost a whole evaluation.
        classifier = model.get_submodule(spec.classifier)
        head = load_head(head_path, spec.num_classes, getattr(classifier, "in_features", None))
    dataset = dataset_for_model(data, spec, labels)
    if workers is None:
        workers = default_workers() if len(dataset) > 4 * batch else 0
    pred = predict(
        model,
        spec,
        dataset,
        batch=batch,
        device=next(model.parameters()).device,
        workers=workers,
        progress=progress,
    )
    report = grading_report(pred.grades, pred.probs, spec.num_classes)
    patients = patient_report(pred, head)
    if patients is not None:
        report["patients"] = patients
    report["model"] = spec.source or spec.arch
    report["data"] = data
    report["seconds"] = time.monotonic() - t0
    return report
