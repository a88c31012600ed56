"""VICReg, Variance-Invariance-Covariance Regularization (Bardes, Ponce & LeCun 2022).

Three explicit terms on the embeddings of two views: invariance (the views are close), variance (every
dimension keeps a standard deviation of at least 1 over the batch, which rules out collapse) and
covariance (dimensions are decorrelated, so they do not all say the same thing).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sslcore.config_schema import param
from sslcore.losses import vicreg_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks._two_view import TwoViewConfig, TwoViewTask, two_view_panels
from sslcore.tasks.base import StepOutput, register_task


@dataclass(frozen=True)
class VICRegConfig(TwoViewConfig):
    invariance_weight: float = param(25.0, "Weight of the invariance (mean squared distance) term (VICReg: 25).",
                                     min=0.0, max=1000.0)
    variance_weight: float = param(25.0, "Weight of the variance hinge that keeps each dimension's std >= 1 "
                                   "(VICReg: 25).", min=0.0, max=1000.0)
    covariance_weight: float = param(1.0, "Weight of the off-diagonal covariance term (VICReg: 1).",
                                     min=0.0, max=1000.0)
    projection_dim: int = param(1024, "Output size of the 3-layer expander (VICReg: 8192; on CIFAR 2048).",
                                min=8, max=8192)
    projection_hidden: int = param(1024, "Hidden units of the expander.", min=8, max=8192)


@register_task("vicreg", "Two views' embeddings close, each dimension varied, dimensions decorrelated (VICReg)")
class VICReg(TwoViewTask):
    Config = VICRegConfig
    config: VICRegConfig
    display_name = "VICReg"
    # Its loss is mostly the variance and covariance regularisers, which fall slowly while the expander's
    # dimensions decorrelate; matching the views is what it learns first.
    learning_metric = "view_gap"
    panels = two_view_panels(
        "VICReg pulls the two views' embeddings together while keeping every dimension varied across "
        "images and the dimensions decorrelated.")

    def __init__(self, encoder: Encoder, config: VICRegConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__(encoder, config, image_shape)
        self.projector = projection_mlp(encoder.feature_dim, config.projection_hidden, config.projection_dim, layers=3)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        z1, z2 = self.projected_views(images, generator)
        c = self.config
        loss, terms = vicreg_loss(z1, z2, c.invariance_weight, c.variance_weight, c.covariance_weight)
        with torch.no_grad():
            view_gap = _view_gap(z1, z2, terms["invariance"].detach())
        return StepOutput(loss=loss, metrics={**terms, "view_gap": view_gap})

    def view_metrics(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, float]:
        """test_loss and test_view_gap: the loss and the view gap on two views of held-out images (projector
        outputs (N, D), N the training batch), to set beside the training batches' figures."""
        c = self.config
        loss, terms = vicreg_loss(view1, view2, c.invariance_weight, c.variance_weight, c.covariance_weight)
        return {"test_loss": float(loss), "test_view_gap": float(_view_gap(view1, view2, terms["invariance"]))}


def _view_gap(z1: torch.Tensor, z2: torch.Tensor, invariance: torch.Tensor) -> torch.Tensor:
    """The invariance term measured against the spread of the embeddings z1, z2 (B, D): about 1 when two views of
    an image lie as far apart as two different images, 0 when they coincide. Unlike the raw term it cannot fall
    by shrinking the embeddings, so it says whether the views are really being matched."""
    spread = z1.float().var(dim=0).mean() + z2.float().var(dim=0).mean()
    return invariance / spread.clamp_min(1e-8)
