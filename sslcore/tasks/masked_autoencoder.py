"""Masked autoencoder / inpainting: hide random square patches, predict the missing pixels.

Context encoders (Pathak et al. 2016) and MAE (He et al. 2022): the loss is taken on the hidden
pixels only, so the model is rewarded for inferring content from context, not for copying.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sslcore import augment
from sslcore.config_schema import ConfigError, TaskConfig, param
from sslcore.models import Encoder
from sslcore.tasks._reconstruction import PANELS, ReconstructionPass, ReconstructionTask
from sslcore.tasks.base import register_task


@dataclass(frozen=True)
class MaskedConfig(TaskConfig):
    mask_ratio: float = param(0.5, "Fraction of patches hidden from the encoder.", min=0.05, max=0.95)
    patch_size: int = param(4, "Side of a square patch in pixels (at most the image side).", min=1, max=64)


@register_task("masked_autoencoder",
               "Hide random patches (mask ratio, patch size), predict the missing pixels; loss on the hidden part")
class MaskedAutoencoder(ReconstructionTask):
    Config = MaskedConfig
    config: MaskedConfig
    panels = PANELS.retitled("input", "masked input", explanation=(
        "Square patches of each test image are hidden (grey in the masked input); the model must fill them in "
        "from the visible rest. The reconstruction shows the visible pixels as given and the hidden ones as the "
        "model's guess; the error counts only the hidden pixels."))

    def __init__(self, encoder: Encoder, config: MaskedConfig, image_shape: tuple[int, int, int]) -> None:
        if config.patch_size > min(image_shape[1:]):
            raise ConfigError(f"task.patch_size = {config.patch_size} is not allowed: expected at most the image side "
                              f"({min(image_shape[1:])} for {image_shape[1]}x{image_shape[2]} images)")
        super().__init__(encoder, config, image_shape)

    def corrupt(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = images.shape
        hidden = augment.random_patch_mask(b, c, h, w, self.config.patch_size, self.config.mask_ratio, generator,
                                           images.device)
        return images.masked_fill(hidden, 0.0), hidden

    def display_input(self, inputs: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        # The model sees zeros there, but zero is also the background of a digit: mid-grey makes the
        # hidden patches visible to a person.
        return inputs if weight is None else inputs.masked_fill(weight, 0.5)

    def display_reconstruction(self, p: ReconstructionPass) -> torch.Tensor:
        # Show what an inpainting model outputs: visible pixels as given, hidden ones predicted.
        assert p.weight is not None  # this task's passes always carry the hidden-pixel mask
        return torch.where(p.weight, p.reconstruction, p.inputs.float())
