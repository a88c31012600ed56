"""SimSiam (Chen & He 2021): a predictor on one branch and a stop-gradient on the other are all it takes to
learn without negatives, target network or large batches.

Turn ``predictor`` off to see why the predictor matters: the two branches then only need to output the
same vector for every image, and they do. The loss drops to its minimum of -1 while the embeddings
collapse (the paper's Figure 2); the k-NN accuracy falls with them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sslcore.config_schema import param
from sslcore.losses import negative_cosine_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks._two_view import TwoViewConfig, TwoViewTask, two_view_panels
from sslcore.tasks.base import StepOutput, register_task


@dataclass(frozen=True)
class SimSiamConfig(TwoViewConfig):
    predictor: bool = param(True, "Use the predictor head. Off, SimSiam collapses to a constant output "
                            "(Chen & He 2021, Table 1): try it to watch collapse happen.")
    projection_dim: int = param(512, "Size of the 3-layer projector's hidden and output layers (SimSiam: 2048).",
                                min=8, max=4096)
    predictor_hidden: int = param(128, "Bottleneck of the predictor, about a quarter of projection_dim (SimSiam: 512).",
                                  min=8, max=4096)


@register_task("simsiam", "Predict one view's embedding from the other with a stop-gradient; no negatives, "
                          "no target copy (SimSiam)")
class SimSiam(TwoViewTask):
    Config = SimSiamConfig
    config: SimSiamConfig
    display_name = "SimSiam"
    # A quarter of the shared 2e-3: at 2e-3 SimSiam's features suffer the dimensional collapse it is known for
    # (Jing et al. 2022), effective rank 93 of 512 after the default 10 epochs on mnist5k; at 5e-4, 167.
    train_defaults = {"lr": 5e-4}
    panels = two_view_panels(
        "SimSiam trains a predictor to turn one view's embedding into the other's, with no gradient "
        "through the target side; other images play no part. Switch the predictor off to watch it "
        "collapse.")

    def __init__(self, encoder: Encoder, config: SimSiamConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__(encoder, config, image_shape)
        d = config.projection_dim
        # No BatchNorm on the projector's output (SimSiam has one): a normalised output cannot shrink to a
        # constant, so without the predictor the collapse would hide in a few dimensions; without it the
        # collapse shows plainly (std of the normalised output -> 0). SimSiam's Table 4 puts the cost at 0.7 points.
        self.projector = projection_mlp(encoder.feature_dim, d, d, layers=3)
        self.predictor: nn.Module = (projection_mlp(d, config.predictor_hidden, d) if config.predictor
                                     else nn.Identity())

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        z1, z2 = self.projected_views(images, generator)
        return StepOutput(loss=self.symmetric_loss(z1, z2))

    def symmetric_loss(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """Each view's prediction against the other view's projection (N, D), averaged: a scalar in [-1, 1]."""
        p1, p2 = self.predictor(z1), self.predictor(z2)
        # negative_cosine_loss stops the gradient through its target: the half that prevents collapse.
        return (negative_cosine_loss(p1, z2) + negative_cosine_loss(p2, z1)) / 2

    def view_metrics(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, float]:
        """test_loss: the loss on two views of held-out images (the predictor runs on the monitor's projections,
        in eval mode), to set beside the training batches' loss."""
        return {"test_loss": float(self.symmetric_loss(view1, view2))}
