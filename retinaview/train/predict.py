"""Predictions of a grader over a data set, and the pairing of a patient's two eyes.

`predict` runs a model once over every image of a data set (no augmentation) and keeps the class
probabilities, the pooled features when the model exposes them, and each image's patient and eye. Evaluation
(`retinaview.train.evaluate`) and the both-eyes head (`retinaview.train.patient`) both start from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from retinaview.core.models.inputs import normalise
from retinaview.core.models.registry import ModelSpec
from retinaview.train import data


@dataclass
class Predictions:
    """A model's output over a data set, in the data set's order.

    Attributes
    ----------
    grades : numpy.ndarray
        (N,) int64 true grades.
    probs : numpy.ndarray
        (N, K) softmax probabilities.
    features : numpy.ndarray or None
        (N, F) pooled features (the classifier's input) when the model exposes them.
    patients, eyes : list or None
        Patient id and ``"left"``/``"right"``/None of every image, when the data set has records.
    """

    grades: np.ndarray
    probs: np.ndarray
    features: np.ndarray | None
    patients: list[str] | None = None
    eyes: list[str | None] | None = None


def features_and_logits(
    model: nn.Module, spec: ModelSpec, x: torch.Tensor
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Pooled features (None if the model has no ``features`` method) and logits of a normalised batch.

    Parameters
    ----------
    model : torch.nn.Module
        paper17-style models expose ``features(x)`` and a classifier module named by ``spec.classifier``.
    spec : ModelSpec
        The model's spec.
    x : torch.Tensor
        (N, 3, H, W) normalised input.

    Returns
    -------
    tuple
        (features (N, F) or None, logits (N, K)).
    """
    feats_fn = getattr(model, "features", None)
    if callable(feats_fn) and not isinstance(feats_fn, nn.Module):
        f = feats_fn(x)
        return f, model.get_submodule(spec.classifier)(f)
    return None, model(x)


def dataset_for_model(
    source: str, spec: ModelSpec, labels: str | None = None, *, synth_as_pairs: bool = False
) -> Dataset:
    """The data set of a source string, preprocessed for ``spec``'s input.

    Parameters
    ----------
    source : str
        ``synth:N:SEED`` (N single images), ``synthpairs:P:SEED`` (P patients, 2P images) or a folder with a
        labels CSV.
    spec : ModelSpec
        Input size and preprocessing chain come from here.
    labels : str, optional
        The folder's labels CSV when it is not found by name.
    synth_as_pairs : bool
        Read ``synth:P:SEED`` as P patients too (``retinaview train-patient``).

    Returns
    -------
    torch.utils.data.Dataset
        Items are (uint8 tensor (3, S, S), grade).
    """
    if source.startswith("synthpairs:") or (synth_as_pairs and source.startswith("synth:")):
        n, seed = data.parse_pairs(source)
        return data.SynthPairDataset(n, seed, spec.input_size, spec.preprocessing)
    return data.build_dataset(
        data.parse_source(source, labels), size=spec.input_size, chain=spec.preprocessing
    )


def predict(
    model: nn.Module,
    spec: ModelSpec,
    dataset: Dataset,
    *,
    batch: int = 16,
    device: torch.device | None = None,
    workers: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Predictions:
    """Run ``model`` in eval mode over every image of ``dataset``.

    Parameters
    ----------
    model : torch.nn.Module
        The grader.
    spec : ModelSpec
        Its spec (normalisation, classifier name).
    dataset : torch.utils.data.Dataset
        Items (uint8 tensor (3, S, S), grade), indexed by `retinaview.train.data.EpochKey`.
    batch : int
        Images per forward pass.
    device : torch.device, optional
        Default: the device of the model's parameters.
    workers : int
        Data-loader processes.
    progress : callable, optional
        Called with (images done, total) after every batch.

    Returns
    -------
    Predictions
    """
    device = device or next(model.parameters()).device
    model.eval()
    sampler = data.EpochBatchSampler(len(dataset), batch, shuffle=False, drop_last=False)
    loader = data.make_loader(dataset, sampler, workers, device)
    grades, probs, feats = [], [], []
    done = 0
    with torch.inference_mode():
        for xb, yb in data.guarded(loader):
            x = normalise(xb.to(device), spec)
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
    """Indices of the (left, right) images of every patient with both eyes present.

    Parameters
    ----------
    patients, eyes : list or None
        Per image, as in `Predictions`.

    Returns
    -------
    numpy.ndarray
        (P, 2) int64, in the order patients first appear.
    """
    if not patients or not eyes:
        return np.zeros((0, 2), dtype=np.int64)
    seen: dict[str, dict[str, int]] = {}
    for i, (p, e) in enumerate(zip(patients, eyes, strict=True)):
        if e in ("left", "right"):
            seen.setdefault(p, {})[e] = i
    pairs = [(d["left"], d["right"]) for d in seen.values() if len(d) == 2]
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def pair_features(
    features: np.ndarray, grades: np.ndarray, pairs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets of the both-eyes head: each eye's features followed by the fellow eye's.

    Parameters
    ----------
    features : numpy.ndarray
        (N, F) pooled features of every image.
    grades : numpy.ndarray
        (N,) true grades.
    pairs : numpy.ndarray
        (P, 2) (left, right) indices from `pair_indices`.

    Returns
    -------
    tuple of numpy.ndarray
        x (2P, 2F) float32, rows [left, right] then [right, left] per patient; y (2P,) the grade of the row's
        first eye.
    """
    left, right = features[pairs[:, 0]], features[pairs[:, 1]]
    x = np.empty((2 * len(pairs), 2 * features.shape[1]), dtype=np.float32)
    x[0::2] = np.concatenate([left, right], 1)
    x[1::2] = np.concatenate([right, left], 1)
    y = np.empty(2 * len(pairs), dtype=np.int64)
    y[0::2] = grades[pairs[:, 0]]
    y[1::2] = grades[pairs[:, 1]]
    return x, y
