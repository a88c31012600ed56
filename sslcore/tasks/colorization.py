"""Colorization (Zhang et al. 2016, simplified): show the model a grey image, have it predict the colours.

To put colour back, the model must recognise what is in the picture and what colour such things
usually are. The grey input is the image's luma Y (ITU-R BT.601), repeated on the three channels so
that the encoder keeps the dataset's input shape; the decoder predicts the two chroma channels
(Cb, Cr) from the encoder's features, and the colour picture is Y + predicted chroma. The loss is the
mean squared error of that picture against the original (a regression, where Zhang et al. classify
quantised colours to avoid greyish averages). Only for colour datasets. The encoder is trained on grey
inputs and evaluated on colour ones.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sslcore.config_schema import TaskConfig, param
from sslcore.models import ConvDecoder, Encoder
from sslcore.pairing import DataRequirements
from sslcore.tasks._reconstruction import PANELS, ReconstructionTask
from sslcore.tasks.base import register_task

# ITU-R BT.601 YCbCr with Cb and Cr offset to [0, 1] (JPEG's convention, here in [0, 1] units).
_LUMA = (0.299, 0.587, 0.114)
_CB_SCALE, _CR_SCALE = 0.5 / (1 - 0.114), 0.5 / (1 - 0.299)


def luma(images: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) in [0, 1] -> Y (B, 1, H, W) in [0, 1]."""
    r, g, b = images.unbind(dim=1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b)[:, None]


def chroma(images: torch.Tensor) -> torch.Tensor:
    """RGB (B, 3, H, W) -> (Cb, Cr) (B, 2, H, W) in [0, 1]; 0.5 is grey."""
    y = luma(images)
    return torch.cat([0.5 + _CB_SCALE * (images[:, 2:3] - y), 0.5 + _CR_SCALE * (images[:, 0:1] - y)], dim=1)


def to_rgb(y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
    """Y (B, 1, H, W) + (Cb, Cr) (B, 2, H, W) -> RGB (B, 3, H, W) clamped to [0, 1]; inverts :func:`chroma`."""
    cb, cr = cbcr[:, 0:1] - 0.5, cbcr[:, 1:2] - 0.5
    r = y + cr / _CR_SCALE
    b = y + cb / _CB_SCALE
    g = (y - _LUMA[0] * r - _LUMA[2] * b) / _LUMA[1]
    return torch.cat([r, g, b], dim=1).clamp(0, 1)


@dataclass(frozen=True)
class ColorizationConfig(TaskConfig):
    decoder_width: int = param(32, "Channels of the convolutional decoder that predicts the colour channels.",
                               min=8, max=256)


@register_task("colorization", "Show a grey image, predict its colours (Zhang et al. 2016, simplified: chroma "
                               "regression); colour datasets only")
class Colorization(ReconstructionTask):
    Config = ColorizationConfig
    config: ColorizationConfig
    requires = DataRequirements(colour=True)
    panels = PANELS.retitled("input", "grey input", explanation=(
        "The model is shown each test image in grey and paints the colours back; its brightness is the grey "
        "input's, the colours are its guess. The error is the mean squared difference from the original colours."))

    def __init__(self, encoder: Encoder, config: ColorizationConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__(encoder, config, image_shape)
        # Two output channels (Cb, Cr) in [0, 1] (the decoder ends in a sigmoid), instead of the autoencoders' C.
        self.decoder = ConvDecoder(encoder.feature_dim, (2, *image_shape[1:]), width=config.decoder_width)

    def corrupt(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, None]:
        return luma(images).expand_as(images), None

    def reconstruct(self, inputs: torch.Tensor) -> torch.Tensor:
        return to_rgb(inputs[:, :1].float(), self.decoder(self.encoder(inputs)).float())
