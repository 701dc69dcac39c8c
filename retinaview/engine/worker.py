"""The engine: one long-lived worker thread owns the model and the device; the GUI talks to it via `Engine`.

Requests do not queue. The GUI thread writes the newest request into a locked inbox and wakes the worker;
the worker takes whatever is newest when it is free, so flipping through 50 images runs at most two
explanations (the one running and the last one). Every explain request carries a generation number and
`Engine` delivers only results of the current generation (ndv's generation counter, napari's slicer).

Explanations arrive class by class: the predicted class's maps go to the GUI as a partial result (same
generation rule, never cached) while the other classes are computed, and a newer request stops the running
explanation between two classes. Priorities in the worker: load a model > explain the image on screen >
score the next image of the folder job. Folder scoring therefore never delays what the user is looking at, and is cancelled by emptying its
queue. torch is imported inside the backend's functions, i.e. in the worker thread only.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from retinaview.core.common.geometry import IDENTITY, affine_from_geometry
from retinaview.engine.cache import DEFAULT_MAX_BYTES, ResultCache
from retinaview.engine.prepare import prepare_explanation
from retinaview.engine.requests import ExplainRequest, ExplainResult, ModelInfo, array_digest

SCORE_CACHE_ENTRIES = 100_000


class _Inbox:
    """What the GUI asked for, newest only; shared by the two threads under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.model: str | None = None
        self.explain: ExplainRequest | None = None
        self.scores: deque[Path] = deque()
        self.job = 0
        self.job_total = 0
        self.job_done = 0
        self.closing = False


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

    def __init__(self, inbox: _Inbox, backend: Any, cache_bytes: int) -> None:
        super().__init__()
        self._inbox = inbox
        self._backend = backend
        self._model: Any = None
        self._info: ModelInfo | None = None
        self.cache: ResultCache[ExplainResult] = ResultCache(
            cache_bytes, size_of=ExplainResult.nbytes
        )
        self._scores: dict[tuple[str, str], np.ndarray] = {}
        self._digests: dict[tuple[str, int, int], str] = {}

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
            if inbox.model is not None:
                name, inbox.model = inbox.model, None
                return lambda: self._load(name)
            if self._model is None:
                return None
            if inbox.explain is not None:
                req, inbox.explain = inbox.explain, None
                return lambda: self._explain(req)
            if inbox.scores:
                path, job = inbox.scores.popleft(), inbox.job
                return lambda: self._score(job, path)
        return None

    # --- tasks -------------------------------------------------------------------------------------
    def _load(self, name: str) -> None:
        try:
            model, info = self._backend.load(name)
        except (
            Exception
        ) as exc:  # the model file is the user's: any failure is a message, not a crash
            self.modelFailed.emit(_one_line(exc, name))
            return
        self._model, self._info = model, info
        self.modelLoaded.emit(info)

    def _explain(self, req: ExplainRequest) -> None:
        t0 = time.perf_counter()
        try:
            key = self._key(req)
            hit = self.cache.get(key)
            if hit is not None:
                result = dataclasses.replace(hit, request=req, cached=True)
            else:
                result = self._compute(req, key)
                self.cache.put(key, result)
                _trim_heap()
                result = dataclasses.replace(result, seconds=time.perf_counter() - t0)
            self._remember_score(key, result.probs)
        except _Superseded:
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

        def on_partial(ex: Any) -> None:
            # Between two classes: the place to give up on an image the user has already left.
            if self._superseded():
                raise _Superseded
            if ex.partial:  # the last one is the final result, which follows at once
                self.explained.emit(self._result(req, key, photo, ex, t0, ex.classes))

        ex = self._backend.explain(self._model, photo, req.method, dict(req.params), on_partial)
        return self._result(req, key, photo, ex, t0)

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
            model=self._info,
            seconds=time.perf_counter() - t0,
            partial=partial,
            done=done or (),
        )

    def _superseded(self) -> bool:
        """A newer request (or a model, or closing) is waiting: the running explanation is stale."""
        inbox = self._inbox
        with inbox.lock:
            return inbox.explain is not None or inbox.model is not None or inbox.closing

    def _score(self, job: int, path: Path) -> None:
        from retinaview.core.common.io import load_image

        try:
            key = (self._digest(path), self._info.model_id)
            probs = self._scores.get(key)
            if probs is None:
                probs = np.asarray(self._backend.predict(self._model, load_image(path)), np.float64)
                if len(self._scores) < SCORE_CACHE_ENTRIES:
                    self._scores[key] = probs
        except Exception as exc:
            self.scoreFailed.emit(job, path, _one_line(exc, path.name))
        else:
            self.scored.emit(job, path, probs)
        inbox = self._inbox
        with inbox.lock:
            if job != inbox.job:
                return
            inbox.job_done += 1
            done, total, finished = inbox.job_done, inbox.job_total, not inbox.scores
        self.scoreProgress.emit(job, done, total)
        if finished:
            self.scoreFinished.emit(job, True)

    # --- keys --------------------------------------------------------------------------------------
    def _digest(self, path: Path) -> str:
        from retinaview.core.common.io import file_digest

        st = path.stat()
        memo = (str(path), st.st_size, st.st_mtime_ns)
        digest = self._digests.get(memo)
        if digest is None:
            digest = self._digests[memo] = file_digest(path)
        return digest

    def _key(self, req: ExplainRequest) -> tuple[str, ...]:
        content = self._digest(req.path) if req.path is not None else array_digest(req.image)
        layers = "layers" if req.keep_layers else "maps"
        return (content, self._info.model_id, req.method, req.params_key(), layers)

    def _remember_score(self, key: tuple[str, ...], probs: np.ndarray) -> None:
        if len(self._scores) < SCORE_CACHE_ENTRIES:
            self._scores[(key[0], key[1])] = probs


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


class _Superseded(Exception):
    """Raised from the partial-result callback to stop an explanation nobody waits for any more."""


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

    ``backend``: object with ``load(name) -> (model, ModelInfo)``, ``explain(model, image, method, params,
    on_partial) -> Explanation`` (calling ``on_partial(explanation)`` after each class when it can, the
    predicted class first) and ``predict(model, image) -> probs``: `retinaview.engine.backend.TorchBackend` for
    real models (the caller picks it, so that the GUI package never imports the torch side, not even
    lazily), `retinaview.engine.fake.FakeBackend` for tests.
    ``explain_fn(model, image, method, **params)`` replaces only the explanation (tests, other methods).
    """

    _running: set[QThread] = set()

    resultReady = Signal(object)
    photoReady = Signal(object)
    failed = Signal(str, object)
    modelLoaded = Signal(object)
    modelFailed = Signal(str)
    scored = Signal(object, object)
    scoreFailed = Signal(object, str)
    scoringProgress = Signal(int, int)
    # object, not bool: PySide6 6.12 miscounts references of bools sent through signals (crash at exit).
    scoringFinished = Signal(object)
    _poke = Signal()

    def __init__(
        self,
        backend: Any,
        model: str = "default",
        explain_fn: Any = None,
        cache_bytes: int = DEFAULT_MAX_BYTES,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if explain_fn is not None:
            backend = _WithExplain(backend, explain_fn)
        self._inbox = _Inbox()
        self._inbox.model = model
        self._generation = 0
        self._job = 0
        self.model_info: ModelInfo | None = None
        self._thread = QThread()
        self._thread.setObjectName("retinaview-engine")
        self._worker = EngineWorker(self._inbox, backend, cache_bytes)
        self._worker.moveToThread(self._thread)
        self._poke.connect(self._worker.pump)
        self._worker.explained.connect(self._on_explained)
        self._worker.photoLoaded.connect(self._on_photo)
        self._worker.explainFailed.connect(self._on_explain_failed)
        self._worker.modelLoaded.connect(self._on_model_loaded)
        self._worker.modelFailed.connect(self.modelFailed)
        self._worker.scored.connect(self._on_scored)
        self._worker.scoreFailed.connect(self._on_score_failed)
        self._worker.scoreProgress.connect(self._on_progress)
        self._worker.scoreFinished.connect(self._on_finished)
        self._thread.finished.connect(self._worker.deleteLater)

    @property
    def cache(self) -> ResultCache[ExplainResult]:
        return self._worker.cache

    @property
    def generation(self) -> int:
        return self._generation

    def start(self) -> None:
        """Start the worker thread; it loads the initial model first."""
        self._thread.start()
        Engine._running.add(self._thread)
        self._poke.emit()

    def close(self) -> None:
        """Drop pending work, let the running task finish, and stop the thread."""
        with self._inbox.lock:
            self._inbox.closing = True
            self._inbox.explain = None
            self._inbox.scores.clear()
        self._thread.quit()
        self._thread.wait()
        Engine._running.discard(self._thread)

    @classmethod
    def running_threads(cls) -> int:
        """Engine threads started and not yet closed, in this process (the tests' leak check)."""
        return sum(t.isRunning() for t in cls._running)

    def request(
        self,
        image: str | Path | np.ndarray,
        method: str = "rfscore",
        params: dict[str, Any] | None = None,
        keep_layers: bool = False,
    ) -> int:
        """Ask for an explanation; replaces any request not yet started. Returns its generation."""
        self._generation += 1
        img = image if isinstance(image, np.ndarray) else Path(image)
        req = ExplainRequest(img, method, dict(params or {}), keep_layers, self._generation)
        with self._inbox.lock:
            self._inbox.explain = req
        self._poke.emit()
        return self._generation

    def load_model(self, name_or_path: str) -> None:
        """Load another model in the worker; `modelLoaded` or `modelFailed` answers. The old one stays
        in use until the new one has loaded."""
        with self._inbox.lock:
            self._inbox.model = str(name_or_path)
        self._poke.emit()

    def score(self, paths: Iterable[str | Path]) -> None:
        """Score every image (probabilities only) in the background; replaces a running scoring job."""
        paths = [Path(p) for p in paths]
        with self._inbox.lock:
            self._job += 1
            self._inbox.job = self._job
            self._inbox.scores = deque(paths)
            self._inbox.job_total = len(paths)
            self._inbox.job_done = 0
        if not paths:
            self.scoringFinished.emit(True)
            return
        self.scoringProgress.emit(0, len(paths))
        self._poke.emit()

    def cancel_scoring(self) -> None:
        with self._inbox.lock:
            was_running = bool(self._inbox.scores)
            self._inbox.scores.clear()
            self._job += 1
            self._inbox.job = self._job
        if was_running:
            self.scoringFinished.emit(False)

    # --- from the worker ---------------------------------------------------------------------------
    @Slot(object)
    def _on_explained(self, result: ExplainResult) -> None:
        if result.request.generation == self._generation:
            self.resultReady.emit(result)

    @Slot(int, object)
    def _on_photo(self, generation: int, photo: object) -> None:
        if generation == self._generation:
            self.photoReady.emit(photo)

    @Slot(int, str, object)
    def _on_explain_failed(self, generation: int, message: str, path: object) -> None:
        if generation == self._generation:
            self.failed.emit(message, path)

    @Slot(object)
    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model_info = info
        self.modelLoaded.emit(info)

    @Slot(int, object, object)
    def _on_scored(self, job: int, path: object, probs: object) -> None:
        if job in (-1, self._job):
            self.scored.emit(path, probs)

    @Slot(int, object, str)
    def _on_score_failed(self, job: int, path: object, message: str) -> None:
        if job == self._job:
            self.scoreFailed.emit(path, message)

    @Slot(int, int, int)
    def _on_progress(self, job: int, done: int, total: int) -> None:
        if job == self._job:
            self.scoringProgress.emit(done, total)

    @Slot(int, object)
    def _on_finished(self, job: int, completed: bool) -> None:
        if job == self._job:
            self.scoringFinished.emit(completed)


class _WithExplain:
    """A backend whose explanation is replaced by a function (tests inject a fake explain)."""

    def __init__(self, backend: Any, explain_fn: Any) -> None:
        self._backend, self._explain_fn = backend, explain_fn

    def load(self, name: str):
        return self._backend.load(name)

    def explain(self, model, image, method, params, on_partial=None):
        return self._explain_fn(model, image, method=method, **params)

    def predict(self, model, image):
        return self._backend.predict(model, image)
