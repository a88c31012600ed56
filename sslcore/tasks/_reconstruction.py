"""Shared machinery of the autoencoder family: corrupt -> encode -> decode -> compare with the clean image.

The three reconstruction tasks differ only in ``corrupt``: identity (autoencoder), noise (denoising)
or hidden patches (masked). The loss is the mean squared error over the pixels ``corrupt`` says count.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from sslcore.config_schema import TaskConfig
from sslcore.models import ConvDecoder, Encoder
from sslcore.tasks.base import PretextTask, StepOutput, batched_eval, to_uint8
from sslcore.tasks.panels import ImageColumn, SnapshotPanels, Summary, Value

#: The family's pictures: original | what the model was given | what it drew. Subclasses retitle "input".
PANELS = SnapshotPanels(
    images=(ImageColumn("original", "original"), ImageColumn("input", "input", hide_if_same_as="original"),
            ImageColumn("reconstruction", "reconstruction")),
    values=(Value("error", "error", "{:.4f}", higher_is_better=False),),
    caption="error {error:.4f}",
    worst_first="error", worst_label="Worst reconstructed first",
    summary=Summary("error", "Mean reconstruction error", axis="error", fmt="{:.4f}"),
    explanation="The model has to redraw each test image; the error is the mean squared difference from the "
                "clean image.")


class ReconstructionPass(NamedTuple):
    """One corrupt -> reconstruct pass; images (B, C, H, W), ``error`` (B,) is the MSE over counted pixels."""

    inputs: torch.Tensor
    weight: torch.Tensor | None  # (B, 1, H, W): pixels that count in the loss; None = all
    reconstruction: torch.Tensor
    error: torch.Tensor


class ReconstructionTask(PretextTask):
    """encoder (B, C, H, W) -> (B, D) bottleneck -> ConvDecoder -> (B, C, H, W) in [0, 1]."""

    panels = PANELS

    def __init__(self, encoder: Encoder, config: TaskConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__(encoder, config, image_shape)
        self.decoder = ConvDecoder(encoder.feature_dim, image_shape)

    def corrupt(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(inputs the model sees (B, C, H, W), weight of each pixel in the loss (B, 1, H, W) or None = all)."""
        return images, None

    def reconstruct(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(inputs))

    def forward_pass(self, images: torch.Tensor, generator: torch.Generator) -> ReconstructionPass:
        """Corrupt, reconstruct and score ``images`` (B, C, H, W)."""
        inputs, weight = self.corrupt(images, generator)
        recon = self.reconstruct(inputs).float()
        sq = (recon - images.float()) ** 2
        if weight is None:
            error = sq.mean(dim=(1, 2, 3))
        else:
            w = weight.to(sq.dtype).expand_as(sq)
            error = (sq * w).sum(dim=(1, 2, 3)) / w.sum(dim=(1, 2, 3)).clamp_min(1.0)
        return ReconstructionPass(inputs, weight, recon, error)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        return StepOutput(loss=self.forward_pass(images, generator).error.mean())

    def make_views(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs, weight = self.corrupt(images, generator)
        return {"original": images, "input": self.display_input(inputs, weight)}

    def display_input(self, inputs: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
        """What to show as the model's input (the masked task greys out the hidden patches)."""
        return inputs

    def display_reconstruction(self, p: ReconstructionPass) -> torch.Tensor:
        """What to show as 'reconstruction' (the masked task pastes the visible pixels back)."""
        return p.reconstruction

    def snapshot(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        p = self.forward_pass(images, generator)
        return {"original": to_uint8(images), "input": to_uint8(self.display_input(p.inputs, p.weight)),
                "reconstruction": to_uint8(self.display_reconstruction(p)),
                "error": p.error.cpu().numpy().astype(np.float32)}

    def evaluate(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        return batched_eval(lambda x: {"test_recon_mse": self.forward_pass(x, generator).error}, images)
