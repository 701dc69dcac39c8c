"""Training and evaluation data: synthetic images generated on the fly, and image folders with a labels CSV.

Data sources are strings, as on the command line:

- ``synth:N[:SEED]``: N synthetic fundus images; item i is ``generate(SEED * 1_000_003 + i)`` (grade drawn
  inside from the class frequencies), or with class balancing ``generate(seed_i, grade=g)`` with g drawn
  from the target proportions by an rng seeded with seed_i. A *fresh* source (the default for training)
  offsets the seeds by ``epoch * N`` so no image is seen twice.
- ``DIR``: an image folder with a labels CSV (EyePACS ``image,level`` or APTOS ``id_code,diagnosis``,
  detected by the header); EyePACS names ``{patient}_{left|right}`` pair the two eyes of a patient.
  The model's preprocessing chain is cached as uint8 ``.npy`` files in the user's cache folder
  (``$XDG_CACHE_HOME/retinaview``, default ``~/.cache/retinaview``; never the image folder) so epochs
  after the first skip it.
- ``synthpairs:P[:SEED]``: P synthetic patients, both eyes (`SynthPairDataset`).

Datasets are indexed by ``(epoch, index)`` keys (see `EpochBatchSampler`) so that every random choice
(balanced grade, augmentation) is a pure function of (seed, epoch, index): runs are reproducible,
resumable mid-epoch, and independent of the number of data-loader workers.
Items are ``(uint8 tensor (3, S, S), grade)``; `retinaview.core.models.inputs.normalise` makes them the
model's input on the device.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from retinaview.core.common.errors import DataError, RetinaviewError, os_error_message
from retinaview.core.common.io import IMAGE_SUFFIXES
from retinaview.core.common.labels import read_label_rows
from retinaview.train import options
from retinaview.train.augment import AugmentConfig, augment, sample_generator

NUM_GRADES = 5
SEED_STRIDE = 1_000_003
_EYE = re.compile(r"^(?P<patient>.+)_(?P<eye>left|right)$", re.IGNORECASE)

EpochKey = tuple[int, int]  # (epoch, index)


# ---------------------------------------------------------------- source strings and class balancing


@dataclass(frozen=True)
class SynthSource:
    """``synth:N:SEED``: N synthetic images of data-set seed SEED."""

    n: int
    seed: int = 0

    def describe(self) -> str:
        """The source as written on the command line."""
        return f"synth:{self.n}:{self.seed}"


@dataclass(frozen=True)
class FolderSource:
    """An image folder and, when it is not found by name, its labels CSV."""

    folder: Path
    labels: Path | None = None

    def describe(self) -> str:
        """The folder's path."""
        return str(self.folder)


def parse_source(text: str, labels: str | os.PathLike | None = None) -> SynthSource | FolderSource:
    """Read a data source string.

    Parameters
    ----------
    text : str
        ``synth:N[:SEED]`` or the path of a folder.
    labels : str or os.PathLike, optional
        The folder's labels CSV when it is not found by name.

    Returns
    -------
    SynthSource or FolderSource

    Raises
    ------
    DataError
        One line naming the source and the problem.
    """
    text = str(text)
    synth = options.parse_synth(text)
    if synth is not None:
        return SynthSource(*synth)
    folder = Path(text)
    if not folder.exists():
        raise DataError(f"{text}: no such folder (and not a synth:N:SEED source)")
    if not folder.is_dir():
        raise DataError(f"{text}: not a folder")
    return FolderSource(folder, Path(labels) if labels else None)


def parse_balance(text: str | None) -> tuple[float, ...] | None:
    """Read a ``--balance`` value (`retinaview.train.options.parse_balance`): the grade proportions of
    class-balanced sampling, or None for the natural frequencies."""
    return options.parse_balance(text)


# ---------------------------------------------------------------- sampling


class EpochBatchSampler:
    """Batches of ``(epoch, index)`` keys for one rank, fixed by (seed, epoch); resumable at a batch.

    Without ``weights`` each epoch is a seeded permutation of range(n). With per-item ``weights`` (class
    balancing of a folder) each epoch draws n items with replacement. The epoch's global order is padded
    to a multiple of ``world`` and split rank::world (as DistributedSampler does).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        *,
        seed: int = 0,
        shuffle: bool = True,
        drop_last: bool = True,
        weights: Sequence[float] | None = None,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.rank = rank
        self.world = world
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Iterate ``epoch`` from batch ``start_batch`` on (to resume mid-epoch)."""
        self.epoch = epoch
        self.start = start_batch

    def indices(self, epoch: int) -> list[int]:
        """This rank's item indices of ``epoch``, in order."""
        g = torch.Generator()
        g.manual_seed(self.seed * 7919 + epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=g).tolist()
        elif self.shuffle:
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per_rank = math.ceil(len(order) / self.world)
        order = (order * (1 + (per_rank * self.world) // max(len(order), 1)))[
            : per_rank * self.world
        ]
        return order[self.rank :: self.world]

    def __len__(self) -> int:
        per_rank = math.ceil(self.n / self.world)
        if self.drop_last:
            return per_rank // self.batch_size
        return math.ceil(per_rank / self.batch_size)

    def __iter__(self) -> Iterator[list[EpochKey]]:
        idx = self.indices(self.epoch)
        b = self.batch_size
        for k in range(self.start, len(self)):
            chunk = idx[k * b : (k + 1) * b]
            if chunk:
                yield [(self.epoch, i) for i in chunk]


def _key(key: EpochKey | int) -> EpochKey:
    if isinstance(key, tuple):
        return int(key[0]), int(key[1])
    return 0, int(key)


def _to_item(
    image: np.ndarray, key: EpochKey, aug: AugmentConfig | None, aug_seed: int
) -> torch.Tensor:
    """(H, W, 3) uint8 -> (3, H, W) uint8 tensor, augmented with the sample's own generator."""
    image = np.ascontiguousarray(image)
    if not image.flags.writeable:
        image = image.copy()
    t = torch.from_numpy(image).permute(2, 0, 1)
    if aug is None:
        return t.contiguous()
    x = t.unsqueeze(0).float().div_(255.0)
    x = augment(x, sample_generator(aug_seed, key[0], key[1]), aug)
    return x.mul_(255.0).round_().to(torch.uint8)[0]


# ---------------------------------------------------------------- synthetic images


class SynthDataset(Dataset):
    """N synthetic images; see the module docstring for the seeds. ``cache_dir`` keeps fixed sources."""

    def __init__(
        self,
        n: int,
        seed: int = 0,
        size: int = 640,
        *,
        chain: str = "paper",
        image_size: int | None = None,
        proportions: Sequence[float] | None = None,
        fresh: bool = False,
        augment: AugmentConfig | None = None,
        aug_seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.n = n
        self.seed = seed
        self.size = size
        self.chain = chain
        self.image_size = int(image_size or size)
        self.proportions = None if proportions is None else tuple(float(p) for p in proportions)
        self.fresh = fresh
        self.augment = augment
        self.aug_seed = aug_seed
        self.cache_dir = Path(cache_dir) if cache_dir is not None and not fresh else None

    def describe(self) -> str:
        bal = "" if self.proportions is None else f" balanced {list(self.proportions)}"
        fresh = " fresh per epoch" if self.fresh else ""
        return f"synth:{self.n}:{self.seed} ({self.chain} at {self.size}px){bal}{fresh}"

    def __len__(self) -> int:
        return self.n

    def item_seed(self, epoch: int, index: int) -> int:
        """The generator seed of item ``index`` in ``epoch`` (the epoch counts only for fresh sources)."""
        return self.seed * SEED_STRIDE + (epoch * self.n if self.fresh else 0) + index

    def requested_grade(self, item_seed: int) -> int | None:
        """The grade class balancing asks of the item; None lets the generator draw it."""
        if self.proportions is None:
            return None
        rng = np.random.default_rng([item_seed, 0xB417])
        return int(rng.choice(NUM_GRADES, p=np.asarray(self.proportions)))

    def sample(self, epoch: int, index: int) -> tuple[np.ndarray, int]:
        """(image (S, S, 3) uint8, grade) of one item, unaugmented.

        The generated photograph goes through the model's preprocessing chain, exactly as a photograph
        opened in the viewer or given to ``retinaview explain`` does, so that training, evaluation and
        explanation see the same input.
        """
        s = self.item_seed(epoch, index)
        g = self.requested_grade(s)
        path = None
        if self.cache_dir is not None:
            name = f"synth_{s}_{'n' if g is None else g}_{self.image_size}_{self.chain}_{self.size}.npz"
            path = self.cache_dir / name
            if path.exists():
                try:
                    with np.load(path) as z:
                        return z["image"], int(z["grade"])
                except (OSError, ValueError, KeyError):
                    pass  # a broken cache entry is regenerated
        from retinaview.core.synthetic import generate

        smp = generate(s, grade=g, size=self.image_size)
        image, grade = preprocess_uint8(smp.image, self.chain, self.size), int(smp.grade)
        if path is not None:
            _atomic_save(path, lambda fh: np.savez(fh, image=image, grade=grade))
        return image, grade

    def __getitem__(self, key: EpochKey | int) -> tuple[torch.Tensor, int]:
        key = _key(key)
        image, grade = self.sample(*key)
        return _to_item(image, key, self.augment, self.aug_seed), grade


# ---------------------------------------------------------------- synthetic patients (both eyes)


def parse_pairs(text: str) -> tuple[int, int]:
    """Number of patients and seed of a synthetic patients source.

    Parameters
    ----------
    text : str
        ``synthpairs:P[:SEED]`` or ``synth:P[:SEED]``.

    Returns
    -------
    tuple of int
        (P patients, seed).
    """
    body = text.split(":", 1)[1] if ":" in text else ""
    src = parse_source("synth:" + body)
    return src.n, src.seed


def patient_grades(seed: int) -> tuple[int, int]:
    """Correlated (left, right) grades of one synthetic patient, drawn as in screening data."""
    from retinaview.core.synthetic import draw_patient_grades

    left, right = draw_patient_grades(np.random.default_rng([seed, 0xE7E5]))
    return int(left), int(right)


class SynthPairDataset(Dataset):
    """2P synthetic images of P patients: patient p has images 2p (left eye) and 2p + 1 (right eye).

    ``records`` carry the patient and the eye of every image, as a folder's records do, so predictions
    over either kind of data set pair the two eyes the same way.
    """

    def __init__(self, patients: int, seed: int = 0, size: int = 640, chain: str = "paper") -> None:
        self.patients = patients
        self.seed = seed
        self.size = size
        self.chain = chain
        self.records = [
            Record(Path(f"synth-{seed}-{p}_{eye}"), -1, f"{p}_{eye}", str(p), eye)
            for p in range(patients)
            for eye in ("left", "right")
        ]

    def describe(self) -> str:
        return f"synthpairs:{self.patients}:{self.seed} at {self.size}px"

    def __len__(self) -> int:
        return 2 * self.patients

    def __getitem__(self, key: EpochKey | int) -> tuple[torch.Tensor, int]:
        from retinaview.core.synthetic import generate

        _, i = _key(key)
        p, side = divmod(i, 2)
        base = self.seed * SEED_STRIDE + p
        eye = ("left", "right")[side]
        smp = generate(base * 2 + side, grade=patient_grades(base)[side], size=self.size, eye=eye)
        image = preprocess_uint8(smp.image, self.chain, self.size)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), int(smp.grade)


# ---------------------------------------------------------------- image folders with a labels CSV


@dataclass(frozen=True)
class Record:
    """One labelled image: its file, grade, name without extension, patient, eye and CSV line."""

    path: Path
    grade: int
    name: str
    patient: str
    eye: str | None = None
    line: int = 0


def patient_eye(name: str) -> tuple[str, str | None]:
    """Patient and eye of an image name.

    Parameters
    ----------
    name : str
        Image name without extension.

    Returns
    -------
    tuple
        (patient, ``"left"``/``"right"``) for EyePACS names ``{patient}_{left|right}``; (name, None) for
        other names, which are their own patient.
    """
    m = _EYE.match(name)
    if m:
        return m["patient"], m["eye"].lower()
    return name, None


def find_labels_csv(folder: Path) -> Path:
    """The folder's labels CSV (`retinaview.train.options.find_labels_file`); a `DataError` if none."""
    return options.find_labels_file(folder)


def read_records(
    csv_path: str | os.PathLike, image_dir: str | os.PathLike | None = None
) -> list[Record]:
    """Records of the images an EyePACS or APTOS labels CSV names.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The labels CSV.
    image_dir : str or os.PathLike, optional
        Where the images are; default the CSV's folder. Names without an extension are looked up there.

    Returns
    -------
    list of Record

    Raises
    ------
    DataError
        Naming the file and the line: empty file, unknown columns, a row with the wrong number of fields,
        a label that is not a grade 0-4, a duplicate name, a missing image.
    """
    csv_path = Path(csv_path)
    folder = Path(image_dir) if image_dir is not None else csv_path.parent
    name = str(csv_path)
    rows = read_label_rows(csv_path, NUM_GRADES)
    index = _image_index(folder)
    records: list[Record] = []
    for row in rows:
        line, image, grade = row.line, row.image, row.grade
        path = _resolve(folder, image, index)
        if path is None:
            raise DataError(f"{name} line {line}: image {image!r} not found in {folder}")
        stem = Path(image).stem if Path(image).suffix.lower() in _suffixes() else image
        patient, eye = patient_eye(stem)
        records.append(Record(path, grade, stem, patient, eye, line))
    return records


def _suffixes() -> tuple[str, ...]:
    return tuple(IMAGE_SUFFIXES)


def _image_index(folder: Path) -> dict[str, Path]:
    """Lower-case stem and file name -> path, for the image files directly inside ``folder``."""
    index: dict[str, Path] = {}
    suffixes = _suffixes()
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise DataError(os_error_message(folder, "list folder", exc)) from None
    for p in entries:
        if p.suffix.lower() in suffixes and not p.name.startswith("."):
            index.setdefault(p.name.lower(), p)
            index.setdefault(p.stem.lower(), p)
    return index


def _resolve(folder: Path, image: str, index: dict[str, Path]) -> Path | None:
    p = folder / image
    if p.suffix.lower() in _suffixes() and p.is_file():
        return p
    return index.get(image.lower())


def load_folder(folder: str | os.PathLike, labels: str | os.PathLike | None = None) -> list[Record]:
    """Records of an image folder, with its labels CSV found by name unless ``labels`` names it."""
    folder = Path(folder)
    csv_path = Path(labels) if labels else find_labels_csv(folder)
    return read_records(csv_path, folder)


def split_by_patient(
    records: Sequence[Record], val_fraction: float, seed: int = 0
) -> tuple[list[Record], list[Record]]:
    """Split records into training and validation with both eyes of a patient on the same side.

    Parameters
    ----------
    records : sequence of Record
        The images.
    val_fraction : float
        About this share of the patients (at least one when positive) goes to validation.
    seed : int
        Seed of the split.

    Returns
    -------
    tuple of list of Record
        (train, val).
    """
    patients = sorted({r.patient for r in records})
    rng = np.random.default_rng([seed, 0x5EED])
    order = rng.permutation(len(patients))
    n_val = round(val_fraction * len(patients)) if val_fraction > 0 else 0
    if 0 < val_fraction and n_val == 0 and len(patients) > 1:
        n_val = 1
    val_patients = {patients[i] for i in order[:n_val]}
    train = [r for r in records if r.patient not in val_patients]
    val = [r for r in records if r.patient in val_patients]
    return train, val


def balance_weights(grades: Sequence[int], proportions: Sequence[float]) -> list[float]:
    """Per-item sampling weights so that drawing with replacement gives the target grade proportions.

    Parameters
    ----------
    grades : sequence of int
        Grade of every item.
    proportions : sequence of float
        Target share of every grade.

    Returns
    -------
    list of float
        One weight per item; 0 for grades with a zero target.
    """
    counts = np.bincount(np.asarray(grades, dtype=np.int64), minlength=NUM_GRADES)
    out = []
    for g in grades:
        out.append(float(proportions[g]) / counts[g] if counts[g] else 0.0)
    return out


class FolderDataset(Dataset):
    """Records of an image folder, preprocessed by ``chain`` at ``size`` and cached on disk."""

    def __init__(
        self,
        records: list[Record],
        size: int = 640,
        chain: str = "paper",
        augment: AugmentConfig | None = None,
        aug_seed: int = 0,
        cache_dir: Path | None = None,
    ) -> None:
        self.records = list(records)
        self.size = size
        self.chain = chain
        self.augment = augment
        self.aug_seed = aug_seed
        self.cache_dir = cache_dir

    def describe(self) -> str:
        folders = sorted({str(r.path.parent) for r in self.records})
        return f"{', '.join(folders)} ({len(self.records)} images, {self.chain} at {self.size}px)"

    def __len__(self) -> int:
        return len(self.records)

    @property
    def grades(self) -> list[int]:
        """Grade of every record."""
        return [r.grade for r in self.records]

    def sample(self, index: int) -> tuple[np.ndarray, int]:
        """(preprocessed image (S, S, 3) uint8, grade) of one record, unaugmented."""
        r = self.records[index]
        return cached_preprocess(r.path, self.chain, self.size, self.cache_dir), r.grade

    def __getitem__(self, key: EpochKey | int) -> tuple[torch.Tensor, int]:
        key = _key(key)
        image, grade = self.sample(key[1])
        return _to_item(image, key, self.augment, self.aug_seed), grade


def user_cache_dir() -> Path:
    """The folder for derived data: ``$XDG_CACHE_HOME/retinaview`` (default ``~/.cache/retinaview``).

    Returns
    -------
    pathlib.Path
        The folder (not created). Derived data never goes into a user's image folder: it may be read-only,
        shared, or under version control.
    """
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "retinaview"


def preprocessed_cache_dir() -> Path:
    """Where `cached_preprocess` keeps preprocessed images by default: ``user_cache_dir() / "preprocessed"``."""
    return user_cache_dir() / "preprocessed"


def cached_preprocess(
    path: Path, chain: str, size: int, cache_dir: Path | None = None
) -> np.ndarray:
    """The ``chain`` preprocessing of an image file, cached on disk.

    The cache key follows the absolute path, size in bytes and modification time of the file, so an
    edited image is preprocessed again.

    Parameters
    ----------
    path : pathlib.Path
        The image file.
    chain : str
        Preprocessing chain (`retinaview.core.preprocess`).
    size : int
        Side of the model's input in pixels.
    cache_dir : pathlib.Path, optional
        Default `preprocessed_cache_dir`, in the user's cache folder, never the image's folder.

    Returns
    -------
    numpy.ndarray
        (size, size, 3) uint8.
    """
    root = cache_dir or preprocessed_cache_dir()
    try:
        st = path.stat()
    except OSError:
        raise DataError(f"{path}: image file disappeared") from None
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{chain}"
    digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    cache = root / f"{digest}_{chain}_{size}.npy"
    if cache.exists():
        try:
            arr = np.load(cache)
            if arr.shape == (size, size, 3) and arr.dtype == np.uint8:
                return arr
        except (OSError, ValueError):
            pass  # a broken cache entry is recomputed
    from retinaview.core.common.io import load_image

    try:
        arr = preprocess_uint8(load_image(path), chain, size)
    except RetinaviewError as exc:
        raise DataError(str(exc)) from None
    try:
        root.mkdir(parents=True, exist_ok=True)
        _atomic_save(cache, lambda fh: np.save(fh, arr))
    except OSError:
        pass  # caching is an optimisation; a read-only disk still trains
    return arr


def preprocess_uint8(image: np.ndarray, chain: str, size: int) -> np.ndarray:
    """One photograph preprocessed for a model, rounded to 8 bits for caching.

    The same `retinaview.core.preprocess.preprocess` call as the viewer and ``retinaview explain`` make.

    Parameters
    ----------
    image : numpy.ndarray
        (H, W, 3) photograph.
    chain : str
        Preprocessing chain.
    size : int
        Side of the model's input in pixels.

    Returns
    -------
    numpy.ndarray
        (size, size, 3) uint8.
    """
    from retinaview.core.preprocess import preprocess

    pre = preprocess(image, chain=chain, size=size)
    return np.clip(np.asarray(pre.image, dtype=np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _atomic_save(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def default_workers() -> int:
    """Data-loader processes: one on small machines (generation overlaps compute), more with more cores."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 4 else min(4, cores // 4)


def make_loader(
    dataset: Dataset, batch_sampler: EpochBatchSampler, workers: int, device: torch.device
) -> DataLoader:
    """A DataLoader over ``dataset`` in the batches of ``batch_sampler``.

    Parameters
    ----------
    dataset : torch.utils.data.Dataset
        Indexed by `EpochKey`.
    batch_sampler : EpochBatchSampler
        Yields the batches of keys.
    workers : int
        Loader processes; 0 loads in the calling thread.
    device : torch.device
        Where the batches go; host memory is pinned for CUDA.

    Returns
    -------
    torch.utils.data.DataLoader
    """
    kwargs: dict[str, object] = {
        "batch_sampler": batch_sampler,
        "num_workers": workers,
        "pin_memory": device.type == "cuda",
    }
    if workers > 0:
        # Never fork: the caller may be a GUI or a process with threads; spawn is safe everywhere.
        kwargs.update(multiprocessing_context="spawn", persistent_workers=True, prefetch_factor=2)
    return DataLoader(dataset, **kwargs)


def guarded(loader: DataLoader) -> Iterator:
    """Iterate a DataLoader; a `RetinaviewError` raised in a worker process comes back as one line.

    DataLoader re-raises worker exceptions with the worker's traceback in the message; the user needs
    only the last line (the file and the problem).
    """
    it = iter(loader)
    while True:
        try:
            item = next(it)
        except StopIteration:
            return
        except RetinaviewError as exc:
            text = str(exc)
            if "\n" not in text:
                raise
            last = [line for line in text.splitlines() if line.strip()][-1].strip()
            head, _, rest = last.partition(": ")
            raise type(exc)(rest if head.endswith("Error") and rest else last) from None
        yield item


# ---------------------------------------------------------------- building datasets from a source


def build_dataset(
    source: SynthSource | FolderSource | str,
    *,
    size: int,
    chain: str = "paper",
    proportions: Sequence[float] | None = None,
    fresh: bool = False,
    augment: AugmentConfig | None = None,
    aug_seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    records: list[Record] | None = None,
    image_size: int | None = None,
) -> SynthDataset | FolderDataset:
    """The data set of one source.

    Parameters
    ----------
    source : SynthSource, FolderSource or str
        Where the images come from.
    size : int
        Side of the model's input in pixels.
    chain : str
        The model's preprocessing chain.
    proportions : sequence of float, optional
        Grade proportions of a class-balanced synthetic source.
    fresh : bool
        New synthetic images every epoch.
    augment : AugmentConfig, optional
        Augmentation of every item.
    aug_seed : int
        Seed of the augmentation.
    cache_dir : str or os.PathLike, optional
        Where preprocessed images are kept.
    records : list of Record, optional
        Replace a folder's records (after a patient split).
    image_size : int, optional
        Side of the generated synthetic photographs; default ``size``.

    Returns
    -------
    SynthDataset or FolderDataset
    """
    if isinstance(source, str):
        source = parse_source(source)
    if isinstance(source, SynthSource):
        return SynthDataset(
            source.n,
            source.seed,
            size,
            chain=chain,
            image_size=image_size,
            proportions=proportions,
            fresh=fresh,
            augment=augment,
            aug_seed=aug_seed,
            cache_dir=cache_dir,
        )
    recs = records if records is not None else load_folder(source.folder, source.labels)
    return FolderDataset(
        recs,
        size,
        chain,
        augment,
        aug_seed,
        Path(cache_dir) if cache_dir else None,
    )
