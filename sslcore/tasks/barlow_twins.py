"""Barlow Twins (Zbontar et al. 2021): make the cross-correlation matrix between the embeddings of two
views as close to the identity as possible.

The diagonal near 1 makes each dimension invariant to the augmentations; the off-diagonal near 0 makes
the dimensions carry different information (redundancy reduction, after H. Barlow), which is also what
stops collapse: a constant output has no correlation at all.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sslcore.config_schema import param
from sslcore.losses import barlow_twins_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks._two_view import TwoViewConfig, TwoViewTask, two_view_panels
from sslcore.tasks.base import StepOutput, register_task


@dataclass(frozen=True)
class BarlowTwinsConfig(TwoViewConfig):
    lambda_offdiag: float = param(0.005, "Weight of the off-diagonal (redundancy) term; the paper's 0.0051 is "
                                  "about 1 / projection_dim.", min=0.0, max=1.0)
    projection_dim: int = param(1024, "Output size of the 3-layer projector (Barlow Twins: 8192; on CIFAR 2048).",
                                min=8, max=8192)
    projection_hidden: int = param(1024, "Hidden units of the projector.", min=8, max=8192)


@register_task("barlow_twins", "Make the cross-correlation of two views' embeddings the identity matrix (Barlow Twins)")
class BarlowTwins(TwoViewTask):
    Config = BarlowTwinsConfig
    config: BarlowTwinsConfig
    display_name = "Barlow Twins"
    panels = two_view_panels(
        "Barlow Twins makes each embedding dimension agree across the two views and differ from the other"
        " dimensions (cross-correlation close to the identity).")

    def __init__(self, encoder: Encoder, config: BarlowTwinsConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__(encoder, config, image_shape)
        self.projector = projection_mlp(encoder.feature_dim, config.projection_hidden, config.projection_dim, layers=3)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        z1, z2 = self.projected_views(images, generator)
        return StepOutput(loss=barlow_twins_loss(z1, z2, self.config.lambda_offdiag))

    def view_metrics(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, float]:
        """test_loss: the loss on two views of held-out images (projector outputs (N, D), N the training batch),
        to set beside the training batches' loss: a gap that widens is the pretext task overfitting."""
        return {"test_loss": float(barlow_twins_loss(view1, view2, self.config.lambda_offdiag))}
