"""Denoising autoencoder (Vincent et al. 2008): corrupt the input, reconstruct the clean image.

Undoing noise cannot be done by copying pixels, so the features must capture the structure of the
data (strokes, edges) rather than the pixels themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sslcore import augment
from sslcore.config_schema import TaskConfig, param
from sslcore.tasks._reconstruction import PANELS, ReconstructionTask
from sslcore.tasks.base import register_task


@dataclass(frozen=True)
class DenoisingConfig(TaskConfig):
    noise: str = param("gaussian", "Kind of corruption.", choices=("gaussian", "salt_and_pepper"))
    strength: float = param(0.4, "Gaussian: noise std (image range is 0-1). Salt and pepper: fraction of pixels hit.",
                            min=0.0, max=1.0)


@register_task("denoising_autoencoder",
               "Corrupt the input (Gaussian or salt-and-pepper noise), reconstruct the clean image")
class DenoisingAutoencoder(ReconstructionTask):
    Config = DenoisingConfig
    config: DenoisingConfig
    panels = PANELS.retitled("input", "noisy input", explanation=(
        "The model sees a noisy copy of each test image and must return the clean one. Noise cannot be undone by "
        "copying pixels: the model has to know what digits look like. The error compares the output with the "
        "clean image."))

    def corrupt(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, None]:
        if self.config.noise == "gaussian":
            return augment.gaussian_noise(images, generator, std=self.config.strength), None
        return augment.salt_and_pepper(images, generator, amount=self.config.strength), None
