"""The paper's 17-layer DR grader (de la Torre, Valls and Puig, arXiv:1712.08107): 640 px input, 15 conv layers, average pool, linear.

Layers 1-14: seven blocks of two [conv 3x3, padding 1, batch norm, ReLU] with 16, 32, 64, 64, 64, 64, 64 filters,
each block followed by a 2x2 max pool (640 -> 320 -> ... -> 5). Layer 15: conv 2x2 without padding, batch norm,
ReLU (5 -> 4). Layer 16: 4x4 average pool to 64 features. Layer 17: linear to the 5 grade logits.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

BLOCK_WIDTHS = (16, 32, 64, 64, 64, 64, 64)


class ConvBNReLU(nn.Sequential):
    """conv (no bias: batch norm supplies the constant) + batch norm + ReLU: one explained layer."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, padding: int) -> None:
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, padding=padding, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
        )


class Paper17(nn.Module):
    """17-layer DR grader; ``features`` gives the 64 pooled features (layer 16), ``classifier`` the logits."""

    def __init__(self, num_classes: int = 5, in_channels: int = 3) -> None:
        super().__init__()
        layers: dict[str, nn.Module] = {}
        ch = in_channels
        for block, width in enumerate(BLOCK_WIDTHS, start=1):
            layers[f"layer{2 * block - 1}"] = ConvBNReLU(ch, width, 3, 1)
            layers[f"layer{2 * block}"] = ConvBNReLU(width, width, 3, 1)
            layers[f"pool{block}"] = nn.MaxPool2d(2)
            ch = width
        layers["layer15"] = ConvBNReLU(ch, 64, 2, 0)
        self.body = nn.Sequential(OrderedDict(layers))
        self.pool = nn.AvgPool2d(4)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(64, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming initialisation (the paper's choice) for convs and the classifier."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="linear")
                nn.init.zeros_(m.bias)

    def features(self, x):
        return self.flatten(self.pool(self.body(x)))

    def forward(self, x):
        return self.classifier(self.features(x))


def explained_layers(model: Paper17) -> list[str]:
    """Names of the 15 conv+BN+ReLU layers, input to output (their ReLU outputs are the layer activations)."""
    return [name for name, m in model.named_modules() if isinstance(m, ConvBNReLU)]
