"""Model registry: architecture name -> constructor, preprocessing, input size, class names, explained layers.

The explanation code never names an architecture: it asks the spec which modules are the explained layers
(each one a cut of the network: every path from the input to the logits passes through it) and which module is
the final linear classifier. Adding an architecture is one `register` call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

DR_CLASSES = ("No DR", "Mild", "Moderate", "Severe", "Proliferative")

# What a model does. "grading": one class per image (probabilities, explanations); "vessels": a map per pixel
# (Maninis et al. 2016, DRIU). Each task has its own operations in the engine's backend.
GRADING = "grading"
VESSELS = "vessels"
TASKS = (GRADING, VESSELS)

# Fundus photographs are mostly red and dark; these statistics of the synthetic training set and of EyePACS
# photographs after the `paper` chain keep the first layer's inputs near zero mean and unit spread.
FUNDUS_MEAN = (0.45, 0.25, 0.12)
FUNDUS_STD = (0.30, 0.18, 0.10)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelSpec:
    """What a caller needs to feed a model and read its output.

    ``task``: what the model does (`TASKS`): ``"grading"`` (class probabilities and explanations) or
    ``"vessels"`` (a vessel map per pixel); the engine's backend offers the operations of the model's task.
    """

    arch: str
    input_size: int
    class_names: tuple[str, ...]
    preprocessing: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    explained_layers: tuple[str, ...]
    classifier: str
    config: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    task: str = GRADING

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def spec_of(model: nn.Module) -> ModelSpec:
    """The `ModelSpec` that `retinaview.core.api.load_model` attaches to a model as ``model.spec``.

    Raises
    ------
    TypeError
        When the model has none (built without the registry).
    """
    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"{type(model).__name__} has no ModelSpec (load it with load_model)")
    return spec


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[..., nn.Module]
    layers: Callable[[nn.Module], list[str]]
    classifier: str
    input_size: int
    preprocessing: str = "paper"
    mean: tuple[float, float, float] = FUNDUS_MEAN
    std: tuple[float, float, float] = FUNDUS_STD
    description: str = ""
    class_names: tuple[str, ...] = DR_CLASSES
    task: str = GRADING


ARCHITECTURES: dict[str, Architecture] = {}


def register(arch: Architecture) -> Architecture:
    ARCHITECTURES[arch.name] = arch
    return arch


def get_architecture(name: str) -> Architecture:
    from retinaview.core.common.errors import CheckpointError

    try:
        return ARCHITECTURES[name]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise CheckpointError(f"unknown architecture {name!r} (known: {known})") from None


def build_model(name: str, config: dict[str, Any] | None = None) -> tuple[nn.Module, ModelSpec]:
    """Build an untrained model of a registered architecture and its spec."""
    from retinaview.core.common.errors import CheckpointError

    arch = get_architecture(name)
    config = dict(config or {})
    num_classes = int(config.setdefault("num_classes", len(arch.class_names)))
    # Saved with the config, so a checkpoint says what it does; one without a task has its
    # architecture's (a grader, for every architecture but DRIU).
    task = str(config.setdefault("task", arch.task))
    if task not in TASKS:
        raise CheckpointError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    model = arch.build(**config)
    class_names = tuple(config.get("class_names") or arch.class_names[:num_classes])
    spec = ModelSpec(
        arch=name,
        input_size=int(config.get("input_size", arch.input_size)),
        class_names=class_names,
        preprocessing=str(config.get("preprocessing", arch.preprocessing)),
        mean=tuple(config.get("mean", arch.mean)),
        std=tuple(config.get("std", arch.std)),
        explained_layers=tuple(arch.layers(model)),
        classifier=arch.classifier,
        config={k: v for k, v in config.items() if k != "class_names"},
        task=task,
    )
    return model, spec


def _paper17(num_classes: int = 5, **_: Any) -> nn.Module:
    from retinaview.core.models.paper17 import Paper17

    return Paper17(num_classes=num_classes)


def _paper17_layers(model: nn.Module) -> list[str]:
    from retinaview.core.models.paper17 import Paper17, explained_layers

    if not isinstance(model, Paper17):
        raise TypeError(f"paper17 layers asked of a {type(model).__name__}")
    return explained_layers(model)


def _resnet18(num_classes: int = 5, **_: Any) -> nn.Module:
    from torchvision.models import resnet18

    return resnet18(weights=None, num_classes=num_classes)


def _resnet_layers(model: nn.Module) -> list[str]:
    blocks = [
        f"{stage}.{i}"
        for stage in ("layer1", "layer2", "layer3", "layer4")
        for i in range(len(getattr(model, stage)))
    ]
    return ["relu", *blocks]


def _densenet121(num_classes: int = 5, **_: Any) -> nn.Module:
    from torchvision.models import densenet121

    return densenet121(weights=None, num_classes=num_classes)


def _densenet_layers(model: nn.Module) -> list[str]:
    features = model.get_submodule("features")
    names = [f"features.{n}" for n, _ in features.named_children()]
    # conv0/norm0 are not cuts on their own output's constant; relu0 is the first activation.
    return [n for n in names if not n.endswith(("conv0", "norm0", "pool0"))]


def _inception_v3(
    num_classes: int = 5, hidden: tuple[int, int] = (1024, 256), **_: Any
) -> nn.Module:
    from torchvision.models import inception_v3

    model = inception_v3(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    # Two fully connected layers (as in the integrated-gradients DR grader study) added before the 5-way output.
    model.fc = nn.Sequential(
        nn.Linear(2048, hidden[0]),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Linear(hidden[0], hidden[1]),
        nn.ReLU(),
        nn.Linear(hidden[1], num_classes),
    )
    return model


def _inception_layers(model: nn.Module) -> list[str]:
    stem = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
    mixed = [n for n, _ in model.named_children() if n.startswith("Mixed_")]
    return [*stem, *mixed, "fc.1", "fc.4"]


register(
    Architecture(
        "paper17",
        _paper17,
        _paper17_layers,
        "classifier",
        640,
        description="the paper's 17-layer grader (de la Torre, Valls and Puig, arXiv:1712.08107)",
    )
)
register(
    Architecture(
        "resnet18",
        _resnet18,
        _resnet_layers,
        "fc",
        512,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        description="torchvision ResNet-18",
    )
)
register(
    Architecture(
        "densenet121",
        _densenet121,
        _densenet_layers,
        "classifier",
        # 384 px keeps training from scratch on a CPU within a working day (about 1 s per image on one
        # core); a user's checkpoint may set any other size in its config.
        384,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        description="torchvision DenseNet-121 (Huang et al. 2017)",
    )
)
register(
    Architecture(
        "inception_v3",
        _inception_v3,
        _inception_layers,
        "fc.5",
        299,
        preprocessing="graham",
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        description="torchvision Inception-v3 with two added FC layers (Szegedy et al. 2016)",
    )
)


def _driu(num_classes: int = 1, width: float = 1.0, in_channels: int = 3, **_: Any) -> nn.Module:
    from retinaview.core.models.driu import DRIU

    if num_classes != 1:
        raise ValueError(f"driu has one output (the vessel logit), not {num_classes}")
    return DRIU(in_channels=in_channels, width=float(width))


def _driu_layers(model: nn.Module) -> list[str]:
    from retinaview.core.models.driu import DRIU, explained_layers

    if not isinstance(model, DRIU):
        raise TypeError(f"driu layers asked of a {type(model).__name__}")
    return explained_layers(model)


register(
    Architecture(
        "driu",
        _driu,
        _driu_layers,
        "fuse",
        512,
        preprocessing="vessels",
        # the `vessels` chain equalises illumination to a mean of 128/255
        mean=(0.5, 0.5, 0.5),
        std=(0.2, 0.2, 0.2),
        description="DRIU vessel segmentation (Maninis et al. 2016), VGG-16 base with side outputs",
        class_names=("vessel",),
        task=VESSELS,
    )
)
