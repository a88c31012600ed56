"""SimCLR (Chen et al. 2020): two random augmentations of each image must map close together,
and away from every other image in the batch (NT-Xent loss on a projection head).

The augmentations define what "the same thing" means: crops teach invariance to position and scale,
colour jitter to lighting. Features are taken before the projection head, as in the paper.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from sslcore.config_schema import param
from sslcore.losses import nt_xent_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks._two_view import TwoViewConfig, TwoViewTask
from sslcore.tasks.base import StepOutput, register_task


@dataclass(frozen=True)
class SimCLRConfig(TwoViewConfig):
    temperature: float = param(0.2, "Softmax temperature of the NT-Xent loss; lower = harder negatives.",
                               min=0.01, max=10.0)
    projection_dim: int = param(128, "Output size of the projection head.", min=8, max=4096)
    projection_hidden: int = param(512, "Hidden units of the projection head.", min=8, max=8192)


@register_task("simclr", "Contrastive: two augmented crops of an image must match each other, not other images "
                         "(NT-Xent)")
class SimCLR(TwoViewTask):
    Config = SimCLRConfig
    config: SimCLRConfig
    display_name = "SimCLR"
    panels = dataclasses.replace(
        TwoViewTask.panels,
        explanation="Two random augmentations (crop, small rotation, brightness and contrast jitter) of the same "
                    "test image. The model is trained to give both views the same features and other images "
                    "different ones, so these pairs show what *the same thing* means to it. Similarity is the "
                    "cosine between the two views' encoder features (1 = identical). Even an untrained network "
                    "finds two crops of one image fairly similar; what training adds is that *different* images "
                    "end up apart (see Embeddings).")

    def __init__(self, encoder: Encoder, config: SimCLRConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__(encoder, config, image_shape)
        self.projector = projection_mlp(encoder.feature_dim, config.projection_hidden, config.projection_dim)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        z1, z2 = self.projected_views(images, generator)
        loss, accuracy = nt_xent_loss(z1, z2, temperature=self.config.temperature)
        return StepOutput(loss=loss, metrics={"pair_acc": accuracy})

    def view_metrics(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, float]:
        """test_pair_acc: the share of the 2N held-out views that pick their partner among the 2N - 1 others;
        test_loss: their NT-Xent loss, to set beside the training batches' (a widening gap is overfitting)."""
        loss, accuracy = nt_xent_loss(view1, view2, temperature=self.config.temperature)
        return {"test_loss": float(loss), "test_pair_acc": float(accuracy)}
