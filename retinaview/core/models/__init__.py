"""Models: the registry of architectures and the paper's grader."""

from retinaview.core.models.registry import (
    ARCHITECTURES,
    DR_CLASSES,
    ModelSpec,
    build_model,
    get_architecture,
)

__all__ = ["ARCHITECTURES", "DR_CLASSES", "ModelSpec", "build_model", "get_architecture"]
