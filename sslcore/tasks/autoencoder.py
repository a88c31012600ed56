"""Autoencoder: squeeze the image through the encoder's feature vector and rebuild it (MSE).

The oldest pretext task (Hinton & Salakhutdinov 2006): features must keep whatever is needed to
redraw the image, which favours what is large and common over what separates classes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sslcore.config_schema import TaskConfig
from sslcore.tasks._reconstruction import PANELS, ReconstructionTask
from sslcore.tasks.base import register_task


@dataclass(frozen=True)
class AutoencoderConfig(TaskConfig):
    """The plain autoencoder has no knobs of its own: the bottleneck is the encoder's feature size."""


@register_task("autoencoder", "Reconstruct the input through the encoder's feature bottleneck (MSE)")
class Autoencoder(ReconstructionTask):
    """Encoder -> bottleneck features -> decoder -> the same image back."""

    Config = AutoencoderConfig
    # Its input is the original, so the "input" column hides itself (hide_if_same_as).
    panels = dataclasses.replace(PANELS, explanation=(
        "The encoder squeezes each test image into a short feature vector; a decoder has to redraw the image from "
        "that alone. At epoch 0 (untrained) the redrawing is a blur; as the features learn what matters (strokes, "
        "shapes), the reconstructions sharpen and the error falls."))
