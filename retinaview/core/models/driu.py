"""DRIU: retinal vessel segmentation with a VGG-16 base and side outputs (Maninis et al., MICCAI 2016).

The base is torchvision's VGG-16 configuration up to ``conv4_3`` (four stages of 3x3 convolutions with ReLU,
separated by three 2x2 max pools; no fully connected layers). The vessel variant reads a "specialised" side
output after the last convolution of each stage (conv1_2, conv2_2, conv3_3, conv4_3): a 3x3 convolution to
K = 16 channels, upsampled to the input size by a transposed convolution with kernel 2s and stride s (s = 2, 4,
8; the conv1_2 side output is already at full size) and centre-cropped. The four are concatenated (64
channels) and fused by a 1x1 convolution into one vessel logit per pixel. The optic-disc variant of the paper
uses the later stages; it is not built here.

``width`` scales every base and side-output channel count (1.0 is the paper's network) so that a narrower
network can be trained on a CPU. Upsampling kernels start as bilinear interpolation, one per channel
(``groups = K``), as in the reference implementation, and are learnt with the rest unless
``learn_upsampling=False``.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

# torchvision's VGG-16 "D" configuration, stages 1-4 (channels of each 3x3 convolution).
VGG16_STAGES: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512))
SIDE_CHANNELS = 16
# Upsampling factor of each stage's side output (stage 1 is at full resolution).
SIDE_STRIDES = (1, 2, 4, 8)
SIDE_NAMES = ("side1", "side2", "side3", "side4")
# The names used in the literature for the four branches ("conv1_2_16", "upsample2", "upsample4", "upsample8").
BRANCH_LABELS = ("conv1_2", "upsample2", "upsample4", "upsample8")


def bilinear_kernel(channels: int, stride: int) -> torch.Tensor:
    """(channels, 1, 2s, 2s) transposed-convolution weights that interpolate bilinearly by ``stride``."""
    k = 2 * stride
    centre = stride - 0.5
    ramp = 1.0 - (torch.arange(k, dtype=torch.float64) - centre).abs() / stride
    w = (ramp[:, None] * ramp[None, :]).to(torch.float32)
    return w.expand(channels, 1, k, k).clone()


class CentreCrop(nn.Module):
    """Crop the centre ``(H, W)`` of a larger map; the size comes from the input image at run time."""

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        h, w = size
        top = (x.shape[-2] - h) // 2
        left = (x.shape[-1] - w) // 2
        return x[..., top : top + h, left : left + w]


class SideOutput(nn.Module):
    """3x3 convolution to K channels, then (for stride > 1) transposed convolution and centre crop."""

    def __init__(self, in_ch: int, k: int, stride: int, learn_upsampling: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, k, 3, padding=1)
        self.stride = stride
        self.up: nn.ConvTranspose2d | None = None
        if stride > 1:
            self.up = nn.ConvTranspose2d(k, k, 2 * stride, stride=stride, groups=k, bias=False)
            with torch.no_grad():
                self.up.weight.copy_(bilinear_kernel(k, stride))
            self.up.weight.requires_grad_(learn_upsampling)
        self.crop = CentreCrop()

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        y = self.conv(x)
        if self.up is not None:
            # (n + 1) * s pixels come out for n in; the s/2 extra on each side are cut off.
            y = self.crop(self.up(y), size)
        return y


class DRIU(nn.Module):
    """DRIU vessel network: ``forward(x)`` -> (N, 1, H, W) vessel logits for an (N, C, H, W) input.

    H and W must be multiples of 8 (three 2x2 pools). ``branch_weights`` (4,) multiplies each side output
    before the fuse layer (all ones for the trained network); changing it is the side-output re-weighting
    experiment.
    """

    def __init__(
        self,
        in_channels: int = 3,
        width: float = 1.0,
        side_channels: int = SIDE_CHANNELS,
        learn_upsampling: bool = True,
    ) -> None:
        super().__init__()
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.width = float(width)
        stages: list[nn.Sequential] = []
        ch = in_channels
        for s, widths in enumerate(VGG16_STAGES, start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            if s > 1:
                layers["pool"] = nn.MaxPool2d(2)
            for i, c in enumerate(widths, start=1):
                c = max(1, int(round(c * width)))
                layers[f"conv{s}_{i}"] = nn.Conv2d(ch, c, 3, padding=1)
                layers[f"relu{s}_{i}"] = nn.ReLU()
                ch = c
            stages.append(nn.Sequential(layers))
        self.stage1, self.stage2, self.stage3, self.stage4 = stages
        stage_out = [max(1, int(round(w[-1] * width))) for w in VGG16_STAGES]
        k = side_channels
        self.side1, self.side2, self.side3, self.side4 = (
            SideOutput(c, k, stride, learn_upsampling)
            for c, stride in zip(stage_out, SIDE_STRIDES, strict=True)
        )
        # The concatenated side outputs: every path to the logit passes through it (a cut of the network).
        self.volume = nn.Identity()
        self.fuse = nn.Conv2d(4 * k, 1, 1)
        self.register_buffer("branch_weights", torch.ones(4), persistent=False)

    def side_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The four side outputs at input resolution, each (N, K, H, W), before re-weighting."""
        size = (x.shape[-2], x.shape[-1])
        if size[0] % 8 or size[1] % 8:
            raise ValueError(
                f"DRIU needs an input side that is a multiple of 8, got {size[0]}x{size[1]}"
            )
        outs = []
        h = x
        for stage, side in zip(
            (self.stage1, self.stage2, self.stage3, self.stage4),
            (self.side1, self.side2, self.side3, self.side4),
            strict=True,
        ):
            h = stage(h)
            outs.append(side(h, size))
        return outs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = self.side_outputs(x)
        w = self.branch_weights.to(outs[0].dtype)
        volume = torch.cat([o * w[i] for i, o in enumerate(outs)], dim=1)
        return self.fuse(self.volume(volume))


def explained_layers(model: DRIU) -> list[str]:
    """The cuts of the network, input to output: the two stage-1 activations (every side output reads
    stage 1) and the concatenated side-output volume. Later base layers are not cuts (side 1 bypasses them)."""
    return ["stage1.relu1_1", "stage1.relu1_2", "volume"]


def gradcam_layers(model: DRIU) -> list[str]:
    """Every convolution activation of the base and every side output (Grad-CAM at every layer)."""
    names = [
        f"stage{s}.relu{s}_{i}"
        for s, widths in enumerate(VGG16_STAGES, start=1)
        for i in range(1, len(widths) + 1)
    ]
    return [*names, *SIDE_NAMES]
