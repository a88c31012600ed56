"""Heads that sit on top of an encoder's features: projection MLPs, classifiers and image decoders."""
from __future__ import annotations

import math

import torch
from torch import nn


def projection_mlp(in_dim: int, hidden_dim: int, out_dim: int, *, layers: int = 2,
                   out_norm: bool = False) -> nn.Sequential:
    """A projection (or prediction) head, (B, in_dim) -> (B, out_dim).

    ``layers - 1`` blocks of Linear-BN-ReLU, then a Linear: with the defaults SimCLR's g(h)
    (Linear-BN-ReLU-Linear), also BYOL's projector and predictor. ``layers=3`` is the projector of Barlow
    Twins, VICReg and SimSiam; ``out_norm`` adds SimSiam's / MoCo v3's BatchNorm (no affine) on the output.
    """
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    blocks: list[nn.Module] = []
    width = in_dim
    for _ in range(layers - 1):
        blocks += [nn.Linear(width, hidden_dim), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
        width = hidden_dim
    blocks.append(nn.Linear(width, out_dim))
    if out_norm:
        blocks.append(nn.BatchNorm1d(out_dim, affine=False))
    return nn.Sequential(*blocks)


class ConvDecoder(nn.Module):
    """Features (B, D) -> images (B, C, H, W) in [0, 1].

    A linear layer makes a coarse (H/4, W/4) map, then two upsample+conv stages restore (H, W).
    Works for any encoder because it only sees the feature vector (the bottleneck).
    """

    def __init__(self, feature_dim: int, image_shape: tuple[int, int, int], width: int = 32) -> None:
        super().__init__()
        c, h, w = image_shape
        self.image_shape = image_shape
        self.coarse = (math.ceil(h / 4), math.ceil(w / 4))
        self.channels = 2 * width
        self.fc = nn.Sequential(nn.Linear(feature_dim, self.channels * self.coarse[0] * self.coarse[1]),
                                nn.ReLU(inplace=True))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(self.channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, c, 3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, D) -> (B, C, H, W) in [0, 1]."""
        x = self.fc(z).view(z.shape[0], self.channels, *self.coarse)
        x = self.up(x)[:, :, : self.image_shape[1], : self.image_shape[2]]
        return torch.sigmoid(x)


def linear_classifier(in_dim: int, num_classes: int) -> nn.Linear:
    """A linear head (B, in_dim) -> logits (B, num_classes)."""
    return nn.Linear(in_dim, num_classes)

