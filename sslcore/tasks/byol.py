"""BYOL, Bootstrap Your Own Latent (Grill et al. 2020): an online network learns to predict, from one view,
what a slowly moving average of itself (the target) makes of the other view.

There are no negative pairs. What keeps it from collapsing to a constant is the asymmetry: a predictor
on the online side only, and a target that receives no gradient and follows the online weights by an
exponential moving average with BYOL's cosine momentum schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sslcore.config_schema import param
from sslcore.losses import negative_cosine_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks._two_view import MomentumConfig, MomentumTwoViewTask, two_view_panels
from sslcore.tasks.base import StepOutput, register_task


@dataclass(frozen=True)
class BYOLConfig(MomentumConfig):
    projection_dim: int = param(128, "Output size of the projector and the predictor (BYOL: 256).", min=8, max=4096)
    projection_hidden: int = param(1024, "Hidden units of the projector and the predictor (BYOL: 4096).",
                                   min=8, max=8192)


@register_task("byol", "Predict what a slow moving-average copy of the network makes of another view; "
                       "no negatives (BYOL)")
class BYOL(MomentumTwoViewTask):
    Config = BYOLConfig
    config: BYOLConfig
    display_name = "BYOL"
    panels = two_view_panels(
        "BYOL trains the network to predict, from one view, what a slowly moving average of itself makes "
        "of the other; other images play no part (no negatives).")

    def __init__(self, encoder: Encoder, config: BYOLConfig, image_shape: tuple[int, int, int]) -> None:
        projector = projection_mlp(encoder.feature_dim, config.projection_hidden, config.projection_dim)
        super().__init__(encoder, config, image_shape, projector)
        self.predictor = projection_mlp(config.projection_dim, config.projection_hidden, config.projection_dim)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        views = torch.cat(self.two_views(images, generator))
        p1, p2 = self.predictor(self.projector(self.encoder(views))).chunk(2)
        t1, t2 = self.target(views).chunk(2)
        # Symmetrised 2 - 2 cos(p, t): each view's prediction against the target of the other view.
        loss = 2.0 + negative_cosine_loss(p1, t2) + negative_cosine_loss(p2, t1)
        return StepOutput(loss=loss)
