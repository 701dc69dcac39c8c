"""Theoretical receptive fields of every explained layer, pools included (standard RF arithmetic).

For a unit grid with jump ``j`` (input pixels between neighbouring units), field size ``r`` and centre
``start`` of unit 0, a kernel ``k`` (dilation ``d``), stride ``s`` and padding ``p`` give::

    k' = d (k - 1) + 1;  r' = r + (k' - 1) j;  j' = j s;  start' = start + ((k' - 1) / 2 - p) j

The fields are traced through the model's real forward pass with a ``TorchFunctionMode``, so functional
pooling, concatenation and residual additions of any torchvision CNN are followed without special cases.
Where branches meet, the field is the union of the branches' fields. A transposed convolution of stride
``s`` divides the jump by ``s`` (``j' = j / s``, ``r' = r + (k' - 1) j'``, ``start' = start + (p - (k' - 1) / 2)
j'``) and a crop (slicing) moves unit 0, so the side outputs of a segmentation network (DRIU) are followed too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.overrides import TorchFunctionMode


@dataclass(frozen=True)
class AxisRF:
    size: float
    jump: float
    start: float

    def through(self, k: int, s: int, p: int, d: int = 1) -> AxisRF:
        ke = d * (k - 1) + 1
        return AxisRF(
            self.size + (ke - 1) * self.jump,
            self.jump * s,
            self.start + ((ke - 1) / 2 - p) * self.jump,
        )

    def through_transposed(self, k: int, s: int, p: int, d: int = 1) -> AxisRF:
        """Through a transposed convolution: output unit ``o`` reads the input units ``i`` with
        ``i s = o + p - t d`` (t = 0 .. k - 1), i.e. a window of ``(k' - 1) / s`` input units centred on
        ``(o + p - (k' - 1) / 2) / s``. The smallest window that slides by the new jump ``j / s`` and holds
        every unit's inputs grows the field by ``(k' - 1) j / s``."""
        ke = d * (k - 1) + 1
        jump = self.jump / s
        return AxisRF(self.size + (ke - 1) * jump, jump, self.start + (p - (ke - 1) / 2) * jump)

    def shifted(self, first: int, step: int = 1) -> AxisRF:
        """After slicing ``first::step`` along the axis (a crop): unit 0 is the old unit ``first``."""
        return AxisRF(self.size, self.jump * step, self.start + first * self.jump)

    def union(self, other: AxisRF) -> AxisRF:
        lo = min(self.start - self.size / 2, other.start - other.size / 2)
        hi = max(self.start + self.size / 2, other.start + other.size / 2)
        return AxisRF(hi - lo, max(self.jump, other.jump), (lo + hi) / 2)


@dataclass(frozen=True)
class LayerRF:
    """Receptive field of one explained layer: per axis (y, x)."""

    name: str
    shape: tuple[int, ...]
    y: AxisRF
    x: AxisRF

    @property
    def rf(self) -> int:
        return int(round(max(self.y.size, self.x.size)))

    @property
    def jump(self) -> int:
        return int(round(max(self.y.jump, self.x.jump)))

    @property
    def offset(self) -> tuple[float, float]:
        return (self.y.start, self.x.start)


def _ints(v, n=2) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(a) for a in v)
    return v * n if len(v) == 1 else v


_POOLS = {"max_pool2d", "max_pool2d_with_indices", "avg_pool2d", "_max_pool2d"}
_ADAPTIVE = {"adaptive_avg_pool2d", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}


class _RFTracer(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.rf: dict[int, tuple[AxisRF, AxisRF]] = {}
        self.alive: list[torch.Tensor] = []  # keeps ids unique while tracing

    def set(self, t, value) -> None:
        if isinstance(t, torch.Tensor):
            self.rf[id(t)] = value
            self.alive.append(t)

    def get(self, t):
        return self.rf.get(id(t)) if isinstance(t, torch.Tensor) else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        known = [
            r for r in map(self.get, _flat(args) + _flat(list(kwargs.values()))) if r is not None
        ]
        if not known:
            return out
        first = self.get(args[0]) if args else None
        outs = out if isinstance(out, (tuple, list)) else (out,)
        if name in ("conv2d", "convolution") and first is not None:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            stride = _arg(args, kwargs, 3, "stride", 1)
            padding = _arg(args, kwargs, 4, "padding", 0)
            dilation = _arg(args, kwargs, 5, "dilation", 1)
            k = weight.shape[-2:]
            d = _ints(dilation)
            if isinstance(padding, str):
                padding = (
                    (0, 0)
                    if padding == "valid"
                    else tuple((d[i] * (k[i] - 1)) // 2 for i in range(2))
                )
            s, p = _ints(stride), _ints(padding)
            value = tuple(first[i].through(k[i], s[i], p[i], d[i]) for i in range(2))
        elif name == "conv_transpose2d" and first is not None:
            weight = args[1] if len(args) > 1 else kwargs["weight"]
            k = weight.shape[-2:]
            s = _ints(_arg(args, kwargs, 3, "stride", 1))
            p = _ints(_arg(args, kwargs, 4, "padding", 0))
            d = _ints(_arg(args, kwargs, 7, "dilation", 1))
            value = tuple(first[i].through_transposed(k[i], s[i], p[i], d[i]) for i in range(2))
        elif name == "__getitem__" and first is not None and isinstance(out, torch.Tensor):
            value = _sliced(first, args[0], args[1], out)
        elif name in _POOLS and first is not None:
            k = _ints(_arg(args, kwargs, 1, "kernel_size", 1))
            stride = _arg(args, kwargs, 2, "stride", None)
            s = _ints(stride) if stride not in (None, [], ()) else k
            p = _ints(_arg(args, kwargs, 3, "padding", 0))
            d = _ints(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            value = tuple(first[i].through(k[i], s[i], p[i], d[i]) for i in range(2))
        elif name in _ADAPTIVE and first is not None:
            size_in = args[0].shape[-2:]
            size_out = outs[0].shape[-2:]
            value = []
            for i in range(2):
                s = size_in[i] // size_out[i]
                k = size_in[i] - (size_out[i] - 1) * s
                value.append(first[i].through(k, s, 0))
            value = tuple(value)
        else:
            value = known[0]
            for r in known[1:]:
                value = (value[0].union(r[0]), value[1].union(r[1]))
        for o in outs:
            self.set(o, value)
        return out


def _sliced(rf: tuple[AxisRF, AxisRF], t: torch.Tensor, index, out: torch.Tensor):
    """The fields after ``t[index]``: a crop of the two spatial axes shifts unit 0 (and a step widens the
    jump); indexing that keeps them untouched keeps the fields."""
    items = index if isinstance(index, tuple) else (index,)
    if any(i is None or isinstance(i, (torch.Tensor, list, bool)) for i in items):
        return rf
    if Ellipsis in items:
        at = items.index(Ellipsis)
        tail = items[at + 1 :]
        per_dim = [slice(None)] * (t.dim() - len(tail)) + list(tail)
    else:
        per_dim = list(items) + [slice(None)] * (t.dim() - len(items))
    spatial = per_dim[-2:]
    if t.dim() < 3 or out.dim() != t.dim() or not all(isinstance(i, slice) for i in spatial):
        return rf
    new = []
    for axis, (sl, n) in enumerate(zip(spatial, t.shape[-2:], strict=True)):
        first, _, step = sl.indices(int(n))
        new.append(rf[axis].shifted(first, step))
    return tuple(new)


def _arg(args, kwargs, pos, key, default):
    if key in kwargs:
        return kwargs[key]
    return args[pos] if len(args) > pos else default


def _flat(items) -> list:
    out = []
    for a in items:
        if isinstance(a, (list, tuple)):
            out.extend(_flat(a))
        else:
            out.append(a)
    return out


def receptive_fields(
    model: nn.Module, layer_names: Sequence[str], input_size: int
) -> list[LayerRF]:
    """Trace one forward pass of a zero image and return the RF of every explained layer, input to output."""
    modules = dict(model.named_modules())
    tracer = _RFTracer()
    found: dict[str, tuple[tuple[int, ...], tuple[AxisRF, AxisRF] | None]] = {}
    hooks = []
    for name in layer_names:

        def hook(module, inputs, output, name=name):
            found[name] = (tuple(output.shape[1:]), tracer.get(output))

        hooks.append(modules[name].register_forward_hook(hook))
    param = next(model.parameters())
    x = torch.zeros(1, 3, input_size, input_size, dtype=param.dtype, device=param.device)
    whole = AxisRF(float(input_size), float(input_size), (input_size - 1) / 2)
    try:
        with torch.no_grad(), tracer:
            tracer.set(x, (AxisRF(1.0, 1.0, 0.0), AxisRF(1.0, 1.0, 0.0)))
            model(x)
    finally:
        for h in hooks:
            h.remove()
    out = []
    for name in layer_names:
        shape, value = found[name]
        if value is None or len(shape) < 3:
            # Fully connected units see the whole image.
            value = (whole, whole)
        out.append(LayerRF(name, shape, *value))
    return out


def paper_rf_sizes(n_layers: int = 15) -> list[int]:
    """The paper's RF list (3, 5, 9, ..., 637): conv-only arithmetic that leaves the pools out."""
    sizes, r = [], 1
    for i in range(n_layers):
        r = r + 2 * 2 ** (i // 2) if i < 14 else r + 2**7
        sizes.append(r)
    return sizes
