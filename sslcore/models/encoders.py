"""Encoders: images (B, C, H, W) float in [0, 1], or table rows (B, F) float -> features (B, D).

Each encoder normalises its own input with the training set's statistics (per channel for images, per
column for tables; stored as buffers), so a saved encoder is self-contained: feed it images in [0, 1] or
rows as the table dataset holds them, and nothing else.
"""
from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import Any, ClassVar, cast

import torch
from torch import nn

from sslcore.registry import Registry


class Encoder(nn.Module):
    """Base class: normalise, then ``body`` maps (B, C, H, W) to (B, feature_dim).

    ``kinds``: the data kinds it accepts (see :mod:`sslcore.pairing`); ``family``: "mlp", "cnn" or "vit",
    which tasks may require.
    """

    feature_dim: int
    mean: torch.Tensor  # buffers (register_buffer), declared for the type checker
    std: torch.Tensor
    body: nn.Module
    kinds: ClassVar[tuple[str, ...]] = ("image",)
    family: ClassVar[str] = "cnn"
    #: ``EncoderConfig`` fields besides name and width that this encoder uses (the form shows only these).
    config_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, in_channels: int, mean: torch.Tensor, std: torch.Tensor,
                 stats_shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        shape = stats_shape or (1, in_channels, 1, 1)
        self.register_buffer("mean", mean.reshape(shape).float())
        self.register_buffer("std", std.reshape(shape).float().clamp_min(1e-3))

    @classmethod
    def create(cls, sample_shape: tuple[int, ...], width: int, mean: torch.Tensor, std: torch.Tensor,
               **options: Any) -> Encoder:
        """The encoder for samples of ``sample_shape``. ``options`` are the architecture fields besides width
        (depth, norm, patch_size: ``EncoderConfig.options()``); each encoder takes those it uses, CNNs none."""
        c, h, w = sample_shape
        cnn = cast("Callable[..., Encoder]", cls)  # the CNNs' __init__: (channels, (H, W), width, mean, std)
        return cnn(c, (h, w), width, mean, std)

    @classmethod
    def settings_problem(cls, options: dict[str, Any], image_shape: tuple[int, ...]) -> str | None:
        """None if ``options`` (``EncoderConfig.options()``) fit images of ``image_shape`` (C, H, W); else one
        line naming the field, the value and what is allowed (a ViT patch that does not divide the image).
        Called by the config validation (through :func:`sslcore.pairing.settings_problem`)."""
        return None

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) in [0, 1] (or (B, F) rows for a table encoder) -> (B, feature_dim)."""
        return self.body(self.normalise(x))


EncoderBuilder = type[Encoder]
ENCODERS: Registry[EncoderBuilder] = Registry("encoder")


def mlp_body(in_dim: int, width: int, depth: int = 2, norm: str = "batch") -> tuple[nn.Sequential, int]:
    """Flatten -> ``depth`` blocks of Linear-Norm-ReLU: 8 x width units, the last block 4 x width.

    Returns (the module, its output size). ``norm`` is "batch" (BatchNorm1d) or "layer" (LayerNorm: no
    batch statistics, so a row's features do not depend on the other rows of its batch).
    """
    if norm not in ("batch", "layer"):
        raise ValueError(f"norm must be 'batch' or 'layer', got {norm!r}")
    sizes = [8 * width] * (depth - 1) + [4 * width]
    layers: list[nn.Module] = [nn.Flatten()]
    for cin, cout in pairwise([in_dim, *sizes]):
        layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout) if norm == "batch" else nn.LayerNorm(cout),
                   nn.ReLU(inplace=True)]
    return nn.Sequential(*layers), sizes[-1]


@ENCODERS.register("mlp", "Fully connected: flatten -> 2 hidden layers (the classic autoencoder shape); "
                          "features = last layer")
class MLPEncoder(Encoder):
    family = "mlp"
    config_fields = ("depth", "norm")

    def __init__(self, in_channels: int, image_size: tuple[int, int], width: int, mean: torch.Tensor, std: torch.Tensor,
                 depth: int = 2, norm: str = "batch") -> None:
        super().__init__(in_channels, mean, std)
        self.body, self.feature_dim = mlp_body(in_channels * image_size[0] * image_size[1], width, depth, norm)

    @classmethod
    def create(cls, sample_shape: tuple[int, ...], width: int, mean: torch.Tensor, std: torch.Tensor,
               depth: int = 2, norm: str = "batch", **_: Any) -> MLPEncoder:
        c, h, w = sample_shape
        return cls(c, (h, w), width, mean, std, depth, norm)


@ENCODERS.register("table_mlp", "Fully connected for table rows: standardise the columns -> depth hidden layers "
                   "(batch or layer norm); features = last layer")
class TableMLPEncoder(Encoder):
    """Rows (B, F) -> standardised with the train split's column mean/std -> :func:`mlp_body` -> (B, 4 x width)."""

    kinds = ("table",)
    family = "mlp"
    config_fields = ("depth", "norm")

    def __init__(self, columns: int, width: int, mean: torch.Tensor, std: torch.Tensor, depth: int = 2,
                 norm: str = "batch") -> None:
        super().__init__(columns, mean, std, stats_shape=(1, columns))
        self.body, self.feature_dim = mlp_body(columns, width, depth, norm)

    @classmethod
    def create(cls, sample_shape: tuple[int, ...], width: int, mean: torch.Tensor, std: torch.Tensor,
               depth: int = 2, norm: str = "batch", **_: Any) -> TableMLPEncoder:
        (columns,) = sample_shape
        return cls(columns, width, mean, std, depth, norm)


def _conv_block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


@ENCODERS.register("convnet", "Small CNN: 4 conv blocks, 3 of them stride 2, pooled to a 2x2 map; "
                              "fast on a CPU (the default)")
class ConvNetEncoder(Encoder):
    def __init__(self, in_channels: int, image_size: tuple[int, int], width: int, mean: torch.Tensor,
                 std: torch.Tensor) -> None:
        super().__init__(in_channels, mean, std)
        w = width
        # Downsample early: most of a small CNN's cost is in its full-resolution layers, and
        # 28x28 digits keep their identity at 14x14. Small inputs (8x8) get fewer stride-2 layers.
        strides = (2, 1, 2, 2) if min(image_size) >= 16 else (1, 1, 2, 1)
        chans = (w, 2 * w, 4 * w, 4 * w)
        layers, cin = [], in_channels
        for cout, stride in zip(chans, strides, strict=True):
            layers.append(_conv_block(cin, cout, stride))
            cin = cout
        # Pool to 2x2 rather than 1x1: a global average throws away where strokes are, which is most of
        # what separates digits; keeping a coarse layout took the mnist5k linear probe from ~96% to ~98%
        # (and 4 labels/class from ~77% to ~83%) at no training cost.
        self.feature_dim = 4 * chans[-1]
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten())


@ENCODERS.register("resnet18", "torchvision ResNet-18 with a small-image stem (3x3 first conv, no max-pool); "
                               "512-d features")
class ResNet18Encoder(Encoder):
    def __init__(self, in_channels: int, image_size: tuple[int, int], width: int, mean: torch.Tensor,
                 std: torch.Tensor) -> None:
        super().__init__(in_channels, mean, std)
        import torchvision  # late: importing it costs seconds (it loads torch._dynamo) that other encoders skip

        net = torchvision.models.resnet18(weights=None)
        # The ImageNet stem (7x7 stride 2 + max-pool) would shrink a 32x32 image to 8x8 before the
        # first block; small-image SSL work (SimCLR's CIFAR variant) uses a 3x3 stride-1 conv instead.
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.feature_dim = 512
        self.body = net


def build_encoder(name: str, sample_shape: tuple[int, ...], *, width: int = 32, depth: int = 2, norm: str = "batch",
                  patch_size: int = 4, mean: torch.Tensor | None = None, std: torch.Tensor | None = None) -> Encoder:
    """Encoder ``name`` for samples of ``sample_shape``: images (C, H, W) or table rows (F,).

    mean/std: the training split's statistics, (C,) of the images in [0, 1] or (F,) of the columns; when
    not given (the weights are loaded afterwards) placeholders of the right shape. depth: hidden layers of an
    MLP or transformer blocks of a ViT; norm: MLP encoders only; patch_size: ViT only.
    """
    size = sample_shape[0]
    table = len(sample_shape) == 1
    mean = torch.full((size,), 0.0 if table else 0.5) if mean is None else mean
    std = torch.full((size,), 1.0 if table else 0.25) if std is None else std
    return ENCODERS.get(name).create(tuple(sample_shape), width, mean, std, depth=depth, norm=norm,
                                     patch_size=patch_size)


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (each (C,)) of uint8 images (N, C, H, W), in [0, 1] units."""
    from sslcore.data.base import ImageDataset  # the one definition of the image statistics

    return ImageDataset.input_stats(images)
