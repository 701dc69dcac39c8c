"""Exact receptive-field score propagation (de la Torre, Valls and Puig, arXiv:1712.08107) for any CNN of affine pieces and ReLU-like gates.

The score of an activation ``a`` towards class ``c`` is ``lambda * a`` with ``lambda = df_c/da``. Through an
affine piece ``z = L(a) + k`` the score splits into an input-dependent part, passed back, and a constant part
``S_k = k * df_c/dz`` that stays with the layer. ReLU, max/avg pooling, concatenation, addition and cropping pass
the score on unchanged in total. So, exactly (de la Torre, Valls and Puig, arXiv:1712.08107)::

    f_c(x) = sum(x * df_c/dx) + sum over layers of sum(S_k) + b_c

and at every explained layer ``l`` (a cut of the network): ``sum(S_i at l) + sum(S_k after l) + b_c = f_c``.
Smooth activations (SiLU, GELU, ...) are linearised at the actual value: the unit keeps
``lambda * (phi(a) - phi'(a) a)`` as its constant, so conservation stays exact.

Implementation: forward hooks record every explained layer's output, every affine module's output with its
constant, every smooth activation's input and output; one forward pass, then one backward pass per class over
the retained graph (on a 2-core CPU this is cheaper than ``is_grads_batched``, whose conv and batch-norm
backward fall back to per-sample loops; on CUDA the batched form is used).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn

from retinaview.core.common.errors import RetinaviewError
from retinaview.core.common.result import class_order

# Modules through which scores pass without a constant: positively homogeneous (f(t a) = t f(a), t > 0).
HOMOGENEOUS = (
    nn.ReLU,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
    nn.Dropout,
    nn.Dropout2d,
    nn.Identity,
    nn.Flatten,
    nn.Upsample,
)
# Elementwise activations that are not homogeneous: linearised at the actual value.
SMOOTH = (
    nn.SiLU,
    nn.GELU,
    nn.Sigmoid,
    nn.Tanh,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.Softplus,
    nn.Mish,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ReLU6,
    nn.Hardtanh,
)
# Affine modules whose constant is their bias. A transposed convolution is affine like a convolution (the
# upsampling of a segmentation network); cropping its output is slicing, linear without a constant.
_AFFINE_WITH_BIAS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
    nn.Linear,
)
UNSUPPORTED = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d, nn.LocalResponseNorm, nn.Softmax)


@dataclass
class LayerScores:
    """Per explained layer, hidden space: S_i and S_k per class, both (C, h, w)."""

    name: str
    si: torch.Tensor
    sk: torch.Tensor


@dataclass
class Decomposition:
    """RF scores for one input. Tensors on the CPU, in the computation's dtype.

    Maps, ``bias`` and ``features`` have one row per computed class, in the order of ``order``.
    """

    logits: torch.Tensor  # (C,) all classes, in class order
    input: torch.Tensor  # (C, H, W): x * df_c/dx summed over colour channels
    layers: list[LayerScores]
    bias: (
        torch.Tensor
    )  # (C,): every constant after the last explained layer (the output bias for paper17)
    features: torch.Tensor | None = None  # (C, F): w_cj * f_j at the classifier's input
    order: list[int] = field(default_factory=list)  # classes in the order they were computed
    # (ch, h, w): the last explained layer's activation in this forward pass (the feature maps' source)
    activation: torch.Tensor | None = None


def _constant(module: nn.Module) -> torch.Tensor | None:
    """Per-output-channel constant ``k`` of an affine module (z = L(a) + k), or None."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.training or module.running_mean is None:
            raise RetinaviewError(
                "batch norm without running statistics (or in training mode) is not affine in its input"
            )
        mean, var = module.running_mean, cast(torch.Tensor, module.running_var)
        inv = torch.rsqrt(var + module.eps)
        k = -mean * inv
        if module.affine:
            k = k * module.weight + module.bias
        return k
    if isinstance(module, _AFFINE_WITH_BIAS):
        return module.bias
    return None


def _channel_sum(t: torch.Tensor) -> torch.Tensor:
    """(N, ch, h, w) -> (N, h, w); (N, F) -> (N, 1, 1)."""
    if t.dim() == 4:
        return t.sum(1)
    return t.reshape(t.shape[0], -1).sum(1).reshape(-1, 1, 1)


def _const_map(k: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Sum over channels of k[ch] * grad[:, ch, ...] -> (N, h, w) or (N, 1, 1), without a temporary."""
    if grad.dim() == 4:
        return torch.einsum("c,nchw->nhw", k, grad)
    return (grad.reshape(grad.shape[0], -1) @ k).reshape(-1, 1, 1)


def resample_mass(m: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    """Resample (N, h, w) maps onto an (H, W) grid keeping every map's total exactly (linear weights)."""
    if tuple(m.shape[-2:]) == tuple(hw):
        return m
    from retinaview.core.common.gaussian_rf import linear_mass_matrix

    gy = m.new_tensor(linear_mass_matrix(m.shape[-2], hw[0]))
    gx = m.new_tensor(linear_mass_matrix(m.shape[-1], hw[1]))
    return gy @ m @ gx.T


class _Recorder:
    """Forward hooks that record what the decomposition needs, in the order modules finish."""

    def __init__(
        self, model: nn.Module, layer_names: Sequence[str], classifier: str | None
    ) -> None:
        self.layer_names = list(layer_names)
        self.classifier = classifier
        self.clone_outputs = False
        self.handles: list = []
        self.reset()
        modules = dict(model.named_modules())
        missing = [n for n in self.layer_names if n not in modules]
        if missing:
            raise RetinaviewError(f"explained layers not found in the model: {', '.join(missing)}")
        for name, module in modules.items():
            if isinstance(module, UNSUPPORTED):
                raise RetinaviewError(
                    f"layer {name} ({type(module).__name__}) is not affine: RF scores would not be exact"
                )
            # A module's own constant is part of its output, so it is recorded before the layer itself.
            if _has_own_constant(module):
                self.handles.append(module.register_forward_hook(self._affine_hook(name)))
            elif isinstance(module, SMOOTH):
                self.handles.append(module.register_forward_hook(self._smooth_hook(name)))
            if name in self.layer_names:
                self.handles.append(module.register_forward_hook(self._layer_hook(name)))
            if name == classifier:
                self.handles.append(module.register_forward_hook(self._classifier_hook))

    def reset(self) -> None:
        self.events: list[tuple[str, str, tuple]] = []  # (kind, name, tensors) in finishing order
        self.features: torch.Tensor | None = None
        self.versions: list[tuple[torch.Tensor, int]] = []

    def _keep(self, t: torch.Tensor) -> torch.Tensor:
        self.versions.append((t, t._version))
        return t

    def _out(self, output):
        # A clone hands later in-place operations (F.relu(inplace=True), out += identity) a tensor of their own,
        # so the recorded activation keeps its value and its gradient.
        return output.clone() if self.clone_outputs else None

    def _layer_hook(self, name):
        def hook(module, inputs, output):
            self.events.append(("layer", name, (self._keep(output),)))
            return self._out(output)

        return hook

    def _affine_hook(self, name):
        def hook(module, inputs, output):
            self.events.append(("affine", name, (self._keep(output), _constant(module))))
            return self._out(output)

        return hook

    def _smooth_hook(self, name):
        def hook(module, inputs, output):
            self.events.append(("smooth", name, (self._keep(inputs[0]), self._keep(output))))
            return self._out(output)

        return hook

    def _classifier_hook(self, module, inputs, output):
        self.features = inputs[0]

    def mutated(self) -> bool:
        return any(t._version != v for t, v in self.versions)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def _has_own_constant(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return True
    return isinstance(module, _AFFINE_WITH_BIAS) and module.bias is not None


@contextmanager
def inplace_disabled(model: nn.Module) -> Iterator[None]:
    """Turn off ``inplace`` on every module that has it while the block runs, and turn it back on after.

    An in-place activation overwrites the output the decomposition records; the forward pass recorded with
    them off keeps its own graph, so the caller's model is restored on exit (as zennit's canonizers do).
    """
    changed = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    for m in changed:
        setattr(m, "inplace", False)  # noqa: B010 (a module attribute, not a parameter: no type for it)
    try:
        yield
    finally:
        for m in changed:
            setattr(m, "inplace", True)  # noqa: B010


def decompose(
    model: nn.Module,
    x: torch.Tensor,
    layer_names: Sequence[str],
    classifier: str | None = None,
    classes: Sequence[int] | str | None = None,
    batched: bool | None = None,
) -> Decomposition:
    """RF score decomposition of ``model`` at the single input ``x`` (1, 3, H, W), already normalised.

    ``layer_names``: explained layers from input to output, each a cut of the network. ``classes``: which
    classes, in order (default: all, the predicted class first; ``"predicted"``: that class alone).
    ``batched``: one batched backward over the classes (default on CUDA) instead of one backward per class
    (default on CPU).
    """
    return merge(list(iter_decompose(model, x, layer_names, classifier, classes, batched)))


def merge(parts: Sequence[Decomposition]) -> Decomposition:
    """One decomposition from the per-step parts of `iter_decompose`."""
    first = parts[0]
    return Decomposition(
        logits=first.logits,
        input=torch.cat([p.input for p in parts]),
        layers=[
            LayerScores(
                layer.name,
                torch.cat([p.layers[k].si for p in parts]),
                torch.cat([p.layers[k].sk for p in parts]),
            )
            for k, layer in enumerate(first.layers)
        ],
        bias=torch.cat([p.bias for p in parts]),
        features=None
        if first.features is None
        else torch.cat([cast(torch.Tensor, p.features) for p in parts]),
        order=[c for p in parts for c in p.order],
        activation=first.activation,
    )


def iter_decompose(
    model: nn.Module,
    x: torch.Tensor,
    layer_names: Sequence[str],
    classifier: str | None = None,
    classes: Sequence[int] | str | None = None,
    batched: bool | None = None,
) -> Iterator[Decomposition]:
    """Like `decompose`, one class at a time (all at once when batched): the first part comes after one
    forward and one backward pass, so a viewer can show the predicted class before the others are done."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError("decompose expects one image: a (1, 3, H, W) tensor")
    if model.training:
        raise RetinaviewError("the model must be in eval mode for an exact decomposition")
    recorder = _Recorder(model, layer_names, classifier)
    # Parameters that require gradients make every convolution's backward compute its weight gradient too,
    # even when only activations are asked for: about 2x the backward cost. The graph is built without them.
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in params:
            p.requires_grad_(False)
        x = x.detach().requires_grad_(True)
        with torch.enable_grad(), inplace_disabled(model):
            logits = model(x)
            if recorder.mutated():
                recorder.reset()
                recorder.clone_outputs = True
                logits = model(x)
        events = recorder.events
        features = recorder.features
    finally:
        recorder.remove()
        for p in params:
            p.requires_grad_(True)
    logits = logits.reshape(-1)
    classes = class_order(int(logits.argmax()), logits.shape[0], classes)

    # Tensors whose gradients we need, without duplicates (a smooth activation's input can be another's output).
    wanted: list[torch.Tensor] = [x]
    index: dict[int, int] = {id(x): 0}
    for _, _, tensors in events:
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.grad_fn is not None and id(t) not in index:
                index[id(t)] = len(wanted)
                wanted.append(t)
    layer_events = [i for i, e in enumerate(events) if e[0] == "layer"]
    if len(layer_events) != len(layer_names):
        raise RetinaviewError(
            "each explained layer must run exactly once per forward pass "
            f"({len(layer_events)} calls for {len(layer_names)} layers)"
        )
    # Constants are credited to the first explained layer that finishes at or after them.
    owner = [bisect.bisect_left(layer_events, i) for i in range(len(events))]

    def maps(grads: list[torch.Tensor]):
        """Maps for the classes whose gradients are stacked in ``grads`` (leading dim = those classes)."""

        def g(t: torch.Tensor) -> torch.Tensor:
            return grads[index[id(t)]]

        input_map = (x.detach() * grads[0]).sum(1)
        si = [_channel_sum(events[i][2][0].detach() * g(events[i][2][0])) for i in layer_events]
        sk: list[torch.Tensor | None] = [None] * len(si)
        tail = torch.zeros(grads[0].shape[0], dtype=input_map.dtype, device=input_map.device)
        for i, (kind, _name, tensors) in enumerate(events):
            if kind == "affine":
                out, k = tensors
                cmap = _const_map(k.detach().to(out.dtype), g(out))
            elif kind == "smooth":
                inp, out = tensors
                cmap = _channel_sum(out.detach() * g(out) - inp.detach() * g(inp))
            else:
                continue
            li = owner[i]
            if li < len(sk):
                cmap = resample_mass(cmap, (si[li].shape[-2], si[li].shape[-1]))
                prev = sk[li]
                sk[li] = cmap if prev is None else prev + cmap
            else:
                tail += cmap.reshape(cmap.shape[0], -1).sum(1)
        sk_full = [torch.zeros_like(m) if c is None else c for m, c in zip(si, sk, strict=True)]
        return input_map.cpu(), [m.cpu() for m in si], [m.cpu() for m in sk_full], tail.cpu()

    weight = None
    if features is not None and features.dim() == 2 and classifier:
        weight = cast(torch.Tensor, dict(model.named_modules())[classifier].weight).detach()
    logits_cpu = logits.detach().cpu()
    activation = events[layer_events[-1]][2][0].detach()[0].cpu() if layer_events else None
    for step, grads in _gradients(logits, wanted, classes, batched):
        input_map, si_maps, sk_maps, tail = maps(grads)
        feats = None
        if weight is not None:
            feats = (weight[step] * cast(torch.Tensor, features).detach().reshape(1, -1)).cpu()
        yield Decomposition(
            logits=logits_cpu,
            input=input_map,
            layers=[
                LayerScores(name, si, sk)
                for name, si, sk in zip(layer_names, si_maps, sk_maps, strict=True)
            ],
            bias=tail,
            features=feats,
            order=step,
            activation=activation,
        )


def _gradients(
    logits: torch.Tensor, wanted: list[torch.Tensor], classes: list[int], batched: bool | None
):
    """Yield (classes of the step, gradients d logits[c] / d t for every wanted t, leading dim = those classes).

    Per class on the CPU (one backward each over the retained graph), all classes at once when batched.
    Yielding per class keeps memory at one class's gradients.
    """
    if batched is None:
        batched = logits.is_cuda
    n = len(classes)
    if batched:
        eye = torch.zeros((n, logits.shape[0]), dtype=logits.dtype, device=logits.device)
        eye[torch.arange(n), torch.tensor(classes)] = 1
        out = torch.autograd.grad(
            logits, wanted, grad_outputs=eye, is_grads_batched=True, allow_unused=True
        )
        yield (
            classes,
            [
                torch.zeros((n, *t.shape[1:]), dtype=t.dtype, device=t.device)
                if gr is None
                else gr[:, 0]
                for gr, t in zip(out, wanted, strict=True)
            ],
        )
        return
    for j, c in enumerate(classes):
        out = torch.autograd.grad(logits[c], wanted, retain_graph=j < n - 1, allow_unused=True)
        yield (
            [c],
            [torch.zeros_like(t) if gr is None else gr for gr, t in zip(out, wanted, strict=True)],
        )
