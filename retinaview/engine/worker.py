"""The engine: one long-lived worker thread owns the model and the device; the GUI talks to it via `Engine`.

Requests do not queue. The GUI thread writes the newest request of each *view* into the worker's inbox
(`retinaview.engine.inbox.Inbox`) and wakes the worker; the worker takes whatever is newest when it is free,
so flipping through 50 images runs at most two explanations (the one running and the last one). A view is a
place that shows maps (the main window's overlay is ``"main"``; a grid comparing methods asks with one view
per cell): each view's newest request wins, independently of the others. Every explain request carries a
generation number and `Engine` delivers only results of the current generation of their view (ndv's
generation counter, napari's slicer).

Explanations arrive class by class: the predicted class's maps go to the GUI as a partial result (same
generation rule, never cached) while the other classes are computed, and a newer request for the same view
stops the running explanation between two classes (the method's ``should_stop``). Priorities in the worker:
load a model > explain (the main view first) > score the next image of the folder job. Folder scoring
therefore never delays what the user is looking at, and is cancelled by emptying its queue. torch is
imported inside the backend's functions, i.e. in the worker thread only.

Vessel segmentation (`Engine.segment`) runs on a second model slot, so the grader stays loaded: the vessel
model loads on the first segment request (or `Engine.load_vessel_model`), segment requests are keyed by view
like explanations (newest wins, generation rule, results cached by image digest + model + parameters) and
come back as a `SegmentResult` through ``viewResultReady``. Priorities: load a model > load the vessel model >
explain > segment > score.

Signals: ``resultReady``, ``photoReady`` and ``failed`` carry the main view only (the main window's and the
inspector's); ``viewResultReady(view, result)`` and ``viewFailed(view, message, path)`` carry every view.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from retinaview.core.common.geometry import IDENTITY, affine_from_geometry
from retinaview.engine.backend import GRADING, Backend
from retinaview.engine.cache import DEFAULT_MAX_BYTES, ResultCache
from retinaview.engine.inbox import Inbox, WorkerThread, running_threads
from retinaview.engine.prepare import prepare_explanation, prepare_smoothed
from retinaview.engine.requests import (
    MAIN_VIEW,
    UNIT_WEIGHTS,
    VESSELS_VIEW,
    ExplainRequest,
    ExplainResult,
    ModelInfo,
    SegmentRequest,
    SegmentResult,
    array_digest,
)

# Entries, not bytes: a probability row or a digest is a few dozen bytes.
SCORE_CACHE_ENTRIES = 100_000
DIGEST_CACHE_ENTRIES = 20_000

# The inbox's slots and queue.
MODEL, EXPLAIN, SCORES = "model", "explain", "scores"
VESSEL_MODEL, SEGMENT = "vessel-model", "segment"
# Segmentations hold a photograph and a few model-sized maps: a small share of the explanations' cap.
SEGMENT_CACHE_BYTES = 64 * 1024 * 1024


@dataclass
class _ScoreJob:
    """The folder-scoring job's counters, shared by both threads under the inbox's lock."""

    job: int = 0
    total: int = 0
    done: int = 0


class EngineWorker(QObject):
    """Lives in the worker thread. Use `Engine`; this class is its private half."""

    explained = Signal(object)
    photoLoaded = Signal(int, object)
    explainFailed = Signal(int, str, object)
    modelLoaded = Signal(object)
    modelFailed = Signal(str)
    scored = Signal(int, object, object)
    scoreFailed = Signal(int, object, str)
    scoreProgress = Signal(int, int, int)
    scoreFinished = Signal(int, object)
    segmented = Signal(object)
    segmentFailed = Signal(int, str, object)
    vesselModelLoaded = Signal(object)
    vesselModelFailed = Signal(str)

    def __init__(self, inbox: Inbox, jobs: _ScoreJob, backend: Backend, cache_bytes: int) -> None:
        super().__init__()
        self._inbox = inbox
        self._jobs = jobs
        self._backend = backend
        self._model: Any = None
        self._info: ModelInfo | None = None
        self._load_error: str | None = None
        self.cache: ResultCache[ExplainResult] = ResultCache(
            cache_bytes, size_of=ExplainResult.nbytes
        )
        self._scores: ResultCache[np.ndarray] = ResultCache(SCORE_CACHE_ENTRIES, size_of=_one)
        self._digests: ResultCache[str] = ResultCache(DIGEST_CACHE_ENTRIES, size_of=_one)
        self._vessel_model: Any = None
        self._vessel_info: ModelInfo | None = None
        self._vessel_error: str | None = None
        self.segment_cache: ResultCache[SegmentResult] = ResultCache(
            SEGMENT_CACHE_BYTES, size_of=SegmentResult.nbytes
        )

    @Slot()
    def pump(self) -> None:
        """Do all pending work, newest first, then return to the thread's event loop."""
        while True:
            task = self._take()
            if task is None:
                break
            task()

    def _take(self):
        inbox = self._inbox
        with inbox.lock:
            if inbox.closing:
                return None
            item = inbox.take(MODEL)
            if item is not None:
                return functools.partial(self._load, item[1])
            item = inbox.take(VESSEL_MODEL)
            if item is not None:
                return functools.partial(self._load_vessels, item[1])
            grader_ready = self._model is not None or self._load_error is not None
            # Before the first model has loaded its requests wait for it.
            item = inbox.take(EXPLAIN, prefer=MAIN_VIEW) if grader_ready else None
            if item is not None:
                return functools.partial(self._explain, item[1])
            if self._vessel_model is not None or self._vessel_error is not None:
                item = inbox.take(SEGMENT, prefer=VESSELS_VIEW)
                if item is not None:
                    return functools.partial(self._segment, item[1])
            if not grader_ready:
                return None
            if inbox.queued(SCORES):
                return functools.partial(self._score, self._jobs.job, inbox.pop(SCORES))
        return None

    # --- tasks -------------------------------------------------------------------------------------
    def _load(self, name: str) -> None:
        try:
            model, info = self._backend.load(name)
        except (
            Exception
        ) as exc:  # the model file is the user's: any failure is a message, not a crash
            message = _one_line(exc, name)
            if self._model is None:
                self._load_error = message
            self.modelFailed.emit(message)
            return
        self._model, self._info, self._load_error = model, info, None
        self.modelLoaded.emit(info)

    def _load_vessels(self, name: str) -> None:
        try:
            model, info = self._backend.load_vessels(name)  # type: ignore[attr-defined]
        except Exception as exc:  # the model file is the user's: any failure is a message
            message = _one_line(exc, name)
            if self._vessel_model is None:
                self._vessel_error = message
            self.vesselModelFailed.emit(message)
            return
        self._vessel_model, self._vessel_info, self._vessel_error = model, info, None
        self.vesselModelLoaded.emit(info)

    @property
    def _loaded(self) -> ModelInfo:
        """The current model's description; raises the reason when no model is loaded."""
        from retinaview.core.common.errors import RetinaviewError

        if self._model is None or self._info is None:
            raise RetinaviewError(f"no model loaded ({self._load_error})")
        return self._info

    def _usable(self, operation: str) -> None:
        """Raise the reason a request cannot run on the current model (none loaded, or another task)."""
        from retinaview.core.common.errors import RetinaviewError

        info = self._loaded
        if info.task != GRADING:
            raise RetinaviewError(
                f"{info.source}: a {info.task} model cannot {operation} (it is not a grader)"
            )

    def _explain(self, req: ExplainRequest) -> None:
        from retinaview.core.common.errors import Cancelled

        t0 = time.perf_counter()
        try:
            self._usable("explain a grade")
            key = self._key(req)
            hit = self.cache.get(key)
            if hit is not None:
                result = dataclasses.replace(hit, request=req, cached=True)
            else:
                result = self._compute(req, key)
                self.cache.put(key, result)
                _trim_heap()
                result = dataclasses.replace(result, seconds=time.perf_counter() - t0)
            self._scores.put((key[0], key[1]), result.probs)
        except Cancelled:
            return
        except Exception as exc:
            self.explainFailed.emit(req.generation, _one_line(exc, req.label), req.path)
            return
        self.explained.emit(result)
        if req.path is not None:
            self.scored.emit(-1, req.path, result.probs)

    def _compute(self, req: ExplainRequest, key: tuple[str, ...]) -> ExplainResult:
        from retinaview.core.common.io import coerce_image, load_image

        t0 = time.perf_counter()
        photo = load_image(req.path) if req.path is not None else coerce_image(req.image)
        self.photoLoaded.emit(req.generation, photo)

        def should_stop() -> bool:
            return self._superseded(req.view)

        def on_partial(ex: Any) -> None:
            # A stale partial result is not worth preparing: the method stops right after this call.
            if not should_stop():
                self.explained.emit(self._result(req, key, photo, ex, t0, ex.classes))

        ex = self._backend.explain(
            self._model, photo, req.method, dict(req.params), on_partial, should_stop
        )
        result = self._result(req, key, photo, ex, t0)
        gate = getattr(self._backend, "quality", None)
        if gate is None:
            return result
        try:
            label, detail = gate(photo)
        except Exception as exc:  # the gate's failure is not the explanation's: said, not raised
            label, detail = None, _one_line(exc, req.label)
        return dataclasses.replace(result, quality=label, quality_detail=detail)

    def _result(
        self,
        req: ExplainRequest,
        key: tuple[str, ...],
        photo: np.ndarray,
        ex: Any,
        t0: float,
        done: tuple[int, ...] | None = None,
    ) -> ExplainResult:
        """A final result (``done`` None) or a partial one of the classes in ``done``."""
        partial = done is not None
        residual = float("nan") if partial else float(ex.check)
        ex = _compact(ex, req.keep_layers and not partial)
        maps = prepare_explanation(ex, done)
        smoothed = {} if partial else prepare_smoothed(ex)
        model_hw = ex.maps.shape[-2:]
        affine = affine_from_geometry(ex.geometry, model_hw)
        if affine is None:
            if photo.shape[:2] != model_hw and ex.display is not None:
                photo = ex.display
            affine = IDENTITY
        if ex.display is not None and ex.display is not photo:
            # The model-resolution copy of the photograph is not drawn: the cache need not hold it.
            ex = dataclasses.replace(ex, display=None)
        return ExplainResult(
            request=req,
            key=key,
            photo=np.ascontiguousarray(photo),
            to_photo=affine,
            maps=maps,
            explanation=ex,
            residual=residual,
            model=self._loaded,
            seconds=time.perf_counter() - t0,
            partial=partial,
            done=done or (),
            smoothed=smoothed,
        )

    def _superseded(self, view: str) -> bool:
        """A newer request for the same view (or a model, or closing) is waiting: the running one is stale."""
        inbox = self._inbox
        with inbox.lock:
            return inbox.closing or inbox.waiting(MODEL) or inbox.waiting(EXPLAIN, view)

    def _segment(self, req: SegmentRequest) -> None:
        from retinaview.core.common.errors import RetinaviewError
        from retinaview.engine.vessel_masks import find_vessel_mask

        t0 = time.perf_counter()
        try:
            if self._vessel_model is None or self._vessel_info is None:
                raise RetinaviewError(f"no vessel model loaded ({self._vessel_error})")
            path = req.path
            content = (
                self._digest(path) if path is not None else array_digest(np.asarray(req.image))
            )
            # A vessel mask put beside the image (or changed) later makes a new result.
            mask = find_vessel_mask(path) if path is not None else None
            mask_id = "" if mask is None else _file_id(mask)
            key = (content, self._vessel_info.model_id, req.params_key(), mask_id)
            hit = self.segment_cache.get(key)
            if hit is not None:
                result = dataclasses.replace(hit, request=req, cached=True)
            else:
                result = self._segment_compute(req, key)
                self.segment_cache.put(key, result)
                result = dataclasses.replace(result, seconds=time.perf_counter() - t0)
        except Exception as exc:
            self.segmentFailed.emit(req.generation, _one_line(exc, req.label), req.path)
            return
        self.segmented.emit(result)

    def _segment_compute(self, req: SegmentRequest, key: tuple[str, ...]) -> SegmentResult:
        from retinaview.core.common.io import coerce_image, load_image
        from retinaview.core.common.vessel_metrics import vessel_scores
        from retinaview.engine.vessel_masks import find_vessel_mask, read_vessel_mask

        t0 = time.perf_counter()
        info = self._vessel_info
        assert info is not None
        photo = load_image(req.path) if req.path is not None else coerce_image(req.image)
        p = req.params
        weights = tuple(float(w) for w in p.get("branch_weights", UNIT_WEIGHTS))
        region = p.get("region")
        seg, cams = self._backend.segment_explained(  # type: ignore[attr-defined]
            self._vessel_model,
            photo,
            branch_weights=weights,
            gradcam=bool(p.get("gradcam", False)),
            region=None if region is None else tuple(float(v) for v in region),
            signed=bool(p.get("signed", False)),
        )
        prob = np.ascontiguousarray(seg.probability, dtype=np.float32)
        affine = affine_from_geometry(seg.geometry, prob.shape) or IDENTITY
        scores, mask_name = None, None
        mask_path = find_vessel_mask(req.path) if req.path is not None else None
        if mask_path is not None:
            truth = read_vessel_mask(mask_path, photo.shape[:2])
            on_model = seg.geometry.to_model(truth, order=0) & seg.fov
            scores = vessel_scores(prob, on_model, seg.fov, seg.threshold).as_dict()
            mask_name = mask_path.name
        return SegmentResult(
            request=req,
            key=key,
            photo=np.ascontiguousarray(photo),
            to_photo=affine,
            probability=prob,
            fov=np.ascontiguousarray(seg.fov, dtype=bool),
            threshold=float(seg.threshold),
            gradcams={k: np.ascontiguousarray(v, dtype=np.float32) for k, v in cams.items()},
            scores=scores,
            mask=mask_name,
            model=info,
            seconds=time.perf_counter() - t0,
        )

    def _score(self, job: int, path: Path) -> None:
        from retinaview.core.common.io import load_image

        try:
            self._usable("score images")
            key = (self._digest(path), self._loaded.model_id)
            probs = self._scores.get(key)
            if probs is None:
                probs = np.asarray(self._backend.predict(self._model, load_image(path)), np.float64)
                self._scores.put(key, probs)
        except Exception as exc:
            self.scoreFailed.emit(job, path, _one_line(exc, path.name))
        else:
            self.scored.emit(job, path, probs)
        inbox = self._inbox
        with inbox.lock:
            if job != self._jobs.job:
                return
            self._jobs.done += 1
            done, total, finished = self._jobs.done, self._jobs.total, not inbox.queued(SCORES)
        self.scoreProgress.emit(job, done, total)
        if finished:
            self.scoreFinished.emit(job, True)

    # --- keys --------------------------------------------------------------------------------------
    def _digest(self, path: Path) -> str:
        """`retinaview.core.common.io.file_digest` of the file, remembered by (path, size, mtime)."""
        from retinaview.core.common.io import file_digest

        st = path.stat()
        memo = (str(path), st.st_size, st.st_mtime_ns)
        digest = self._digests.get(memo)
        if digest is None:
            digest = file_digest(path)
            self._digests.put(memo, digest)
        return digest

    def _key(self, req: ExplainRequest) -> tuple[str, ...]:
        path = req.path
        content = self._digest(path) if path is not None else array_digest(np.asarray(req.image))
        layers = "layers" if req.keep_layers else "maps"
        return (content, self._loaded.model_id, req.method, req.params_key(), layers)


def _file_id(path: Path) -> str:
    """A file's name, size and modification time: changes when the file does."""
    st = path.stat()
    return f"{path.name}|{st.st_size}|{st.st_mtime_ns}"


def _one(_value: object) -> int:
    """Every entry counts one (caches bounded by entries)."""
    return 1


def _trim_heap() -> None:
    """Return freed heap memory to the system (glibc; elsewhere nothing to do).

    glibc keeps the memory of freed arrays of a few MB in the thread's heap for reuse; as results leave the
    cache and new ones arrive at other addresses, browsing 200 images grew the process by 150 MB more than
    the cache holds. ``malloc_trim`` takes well under a millisecond, once per computed explanation.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


def _compact(ex: Any, keep_layers: bool) -> Any:
    """float32 maps (half the memory of float64, plenty for display); layers only when asked for."""

    def f32(a):
        return None if a is None else np.ascontiguousarray(a, dtype=np.float32)

    layers = []
    if keep_layers:
        layers = [dataclasses.replace(r, si=f32(r.si), sk=f32(r.sk)) for r in ex.layers]
    return dataclasses.replace(
        ex,
        maps=f32(ex.maps),
        extra_maps={k: f32(v) for k, v in ex.extra_maps.items()},
        layers=layers,
    )


def _one_line(exc: BaseException, name: Any) -> str:
    """A user-facing line. Our own errors already name the file; anything else gets the name prefixed."""
    from retinaview.core.common.errors import RetinaviewError

    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, RetinaviewError):
        return text
    return f"{name}: {type(exc).__name__}: {text}"[:300]


class Engine(QObject):
    """GUI-thread handle on the worker thread. Create, connect signals, `start()`, and `close()` at the end.

    Parameters
    ----------
    backend : Backend
        `retinaview.engine.backend.TorchBackend` for real models (the caller picks it, so that the GUI
        package never imports the torch side, not even lazily); tests pass a stand-in.
    model : str
        The model to load first (``"default"``, an architecture name or a checkpoint path).
    cache_bytes : int
        Cap of the explanation cache.
    parent : QObject, optional
    """

    resultReady = Signal(object)
    photoReady = Signal(object)
    failed = Signal(str, object)
    viewResultReady = Signal(str, object)
    viewFailed = Signal(str, str, object)
    modelLoaded = Signal(object)
    modelFailed = Signal(str)
    scored = Signal(object, object)
    scoreFailed = Signal(object, str)
    scoringProgress = Signal(int, int)
    # object, not bool: PySide6 6.12 miscounts references of bools sent through signals (crash at exit).
    scoringFinished = Signal(object)
    vesselModelLoaded = Signal(object)
    vesselModelFailed = Signal(str)

    def __init__(
        self,
        backend: Backend,
        model: str = "default",
        cache_bytes: int = DEFAULT_MAX_BYTES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._inbox = Inbox(slots=(MODEL, EXPLAIN, VESSEL_MODEL, SEGMENT), queues=(SCORES,))
        self._inbox.put(MODEL, model)
        self._jobs = _ScoreJob()
        self._generation = 0
        self._generations: dict[str, int] = {}
        self.model_info: ModelInfo | None = None
        self.vessel_model_info: ModelInfo | None = None
        self._vessel_model_asked = False
        self._worker = EngineWorker(self._inbox, self._jobs, backend, cache_bytes)
        self._thread = WorkerThread(self._worker, "retinaview-engine", self._inbox, self)
        self._worker.explained.connect(self._on_explained)
        self._worker.photoLoaded.connect(self._on_photo)
        self._worker.explainFailed.connect(self._on_explain_failed)
        self._worker.modelLoaded.connect(self._on_model_loaded)
        self._worker.modelFailed.connect(self.modelFailed)
        self._worker.scored.connect(self._on_scored)
        self._worker.scoreFailed.connect(self._on_score_failed)
        self._worker.scoreProgress.connect(self._on_progress)
        self._worker.scoreFinished.connect(self._on_finished)
        self._worker.segmented.connect(self._on_segmented)
        self._worker.segmentFailed.connect(self._on_explain_failed)
        self._worker.vesselModelLoaded.connect(self._on_vessel_model_loaded)
        self._worker.vesselModelFailed.connect(self.vesselModelFailed)

    @property
    def cache(self) -> ResultCache[ExplainResult]:
        """The worker's explanation cache (read-only use from the GUI thread)."""
        return self._worker.cache

    @property
    def generation(self) -> int:
        """The generation of the newest request of any view."""
        return self._generation

    def start(self) -> None:
        """Start the worker thread; it loads the initial model first."""
        self._thread.start()
        self._thread.poke()

    def close(self) -> None:
        """Drop pending work, let the running task finish, and stop the thread."""
        self._thread.close()

    @classmethod
    def running_threads(cls) -> int:
        """Worker threads (engine, layer mapper) started and not yet closed, in this process."""
        return running_threads()

    def request(
        self,
        image: str | Path | np.ndarray,
        method: str = "rfscore",
        params: dict[str, Any] | None = None,
        keep_layers: bool = False,
        view: str = MAIN_VIEW,
    ) -> int:
        """Ask for an explanation for ``view``; replaces that view's request not yet started.

        Parameters
        ----------
        image : path or numpy.ndarray
            A file or an (H, W, 3) uint8 image.
        method : str
            A method of `retinaview.core.explain.methods.METHODS`.
        params : dict, optional
            The method's parameters (JSON-serialisable; part of the cache key).
        keep_layers : bool
            Keep the per-layer maps (the layer inspector needs them).
        view : str
            Where the maps are shown (``"main"``: the main window; other names for other views, each of
            which gets its newest request answered). Results come back with ``result.request.view``.

        Returns
        -------
        int
            The request's generation (unique across views).
        """
        self._generation += 1
        self._generations[view] = self._generation
        img = image if isinstance(image, np.ndarray) else Path(image)
        req = ExplainRequest(img, method, dict(params or {}), keep_layers, self._generation, view)
        self._inbox.put(EXPLAIN, req, key=view)
        self._thread.poke()
        return self._generation

    def request_many(
        self,
        image: str | Path | np.ndarray,
        methods: Iterable[tuple[str, str, dict[str, Any] | None]],
        keep_layers: bool = False,
    ) -> dict[str, int]:
        """Ask for several explanations of one image at once, one per view (a grid comparing methods).

        Parameters
        ----------
        image : path or numpy.ndarray
        methods : iterable of (view, method, params)
            One request per view; each replaces that view's pending request.
        keep_layers : bool

        Returns
        -------
        dict of str to int
            Each view's generation.
        """
        return {
            view: self.request(image, method, params, keep_layers, view)
            for view, method, params in methods
        }

    def segment(
        self,
        image: str | Path | np.ndarray,
        params: dict[str, Any] | None = None,
        view: str = VESSELS_VIEW,
    ) -> int:
        """Ask for the vessel segmentation of an image for ``view``; replaces that view's request not
        yet started. Loads the bundled vessel model first when none was asked for.

        Parameters
        ----------
        image : path or numpy.ndarray
            A file or an (H, W, 3) uint8 image.
        params : dict, optional
            ``branch_weights``, ``gradcam``, ``region``, ``signed`` (see
            `retinaview.engine.requests.SegmentRequest`; part of the cache key).
        view : str
            Where the result is shown; each view's newest request is answered through ``viewResultReady``
            with a `SegmentResult` (failures through ``viewFailed``).

        Returns
        -------
        int
            The request's generation (unique across views and kinds).
        """
        if not self._vessel_model_asked:
            self.load_vessel_model("default")
        self._generation += 1
        self._generations[view] = self._generation
        img = image if isinstance(image, np.ndarray) else Path(image)
        self._inbox.put(
            SEGMENT, SegmentRequest(img, dict(params or {}), self._generation, view), key=view
        )
        self._thread.poke()
        return self._generation

    def load_vessel_model(self, name_or_path: str) -> None:
        """Load the vessel model (``"default"``: the bundled one) into its own slot; the grader stays.
        `vesselModelLoaded` or `vesselModelFailed` answers."""
        self._vessel_model_asked = True
        self._inbox.put(VESSEL_MODEL, str(name_or_path))
        self._thread.poke()

    def load_model(self, name_or_path: str) -> None:
        """Load another model in the worker; `modelLoaded` or `modelFailed` answers. The old one stays
        in use until the new one has loaded."""
        self._inbox.put(MODEL, str(name_or_path))
        self._thread.poke()

    def score(self, paths: Iterable[str | Path]) -> None:
        """Score every image (probabilities only) in the background; replaces a running scoring job."""
        paths = [Path(p) for p in paths]
        with self._inbox.lock:
            self._jobs.job += 1
            self._jobs.total, self._jobs.done = len(paths), 0
            self._inbox.replace(SCORES, paths)
        if not paths:
            self.scoringFinished.emit(True)
            return
        self.scoringProgress.emit(0, len(paths))
        self._thread.poke()

    def cancel_scoring(self) -> None:
        """Stop the folder-scoring job; `scoringFinished(False)` answers when one was running."""
        with self._inbox.lock:
            was_running = bool(self._inbox.queued(SCORES))
            self._inbox.replace(SCORES, ())
            self._jobs.job += 1
        if was_running:
            self.scoringFinished.emit(False)

    # --- from the worker ---------------------------------------------------------------------------
    def _current(self, generation: int) -> str | None:
        """The view whose newest request has ``generation``, or None when it is stale."""
        for view, g in self._generations.items():
            if g == generation:
                return view
        return None

    @Slot(object)
    def _on_explained(self, result: ExplainResult) -> None:
        view = self._current(result.request.generation)
        if view is None:
            return
        self.viewResultReady.emit(view, result)
        if view == MAIN_VIEW:
            self.resultReady.emit(result)

    @Slot(int, object)
    def _on_photo(self, generation: int, photo: object) -> None:
        if self._current(generation) == MAIN_VIEW:
            self.photoReady.emit(photo)

    @Slot(int, str, object)
    def _on_explain_failed(self, generation: int, message: str, path: object) -> None:
        view = self._current(generation)
        if view is None:
            return
        self.viewFailed.emit(view, message, path)
        if view == MAIN_VIEW:
            self.failed.emit(message, path)

    @Slot(object)
    def _on_segmented(self, result: SegmentResult) -> None:
        view = self._current(result.request.generation)
        if view is not None:
            self.viewResultReady.emit(view, result)

    @Slot(object)
    def _on_vessel_model_loaded(self, info: ModelInfo) -> None:
        self.vessel_model_info = info
        self.vesselModelLoaded.emit(info)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_info = info
        self.modelLoaded.emit(info)

    @Slot(int, object, object)
    def _on_scored(self, job: int, path: object, probs: object) -> None:
        if job in (-1, self._jobs.job):
            self.scored.emit(path, probs)

    @Slot(int, object, str)
    def _on_score_failed(self, job: int, path: object, message: str) -> None:
        if job == self._jobs.job:
            self.scoreFailed.emit(path, message)

    @Slot(int, int, int)
    def _on_progress(self, job: int, done: int, total: int) -> None:
        if job == self._jobs.job:
            self.scoringProgress.emit(done, total)

    @Slot(int, object)
    def _on_finished(self, job: int, completed: bool) -> None:
        if job == self._jobs.job:
            self.scoringFinished.emit(completed)
