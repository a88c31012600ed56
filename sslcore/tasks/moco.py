"""MoCo v3 (Chen, Xie & He 2021): contrastive learning against a momentum encoder.

A query (online encoder + projector + predictor) of one view must pick, among the keys of the batch, the
key of the other view of its image. Keys come from a momentum (EMA) copy of the encoder and projector,
so they change slowly and consistently. MoCo v3 drops MoCo's queue: the other images of the batch are
the negatives. The loss is symmetrised over the two views.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from sslcore.config_schema import param
from sslcore.losses import info_nce_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks._two_view import MomentumConfig, MomentumTwoViewTask, two_view_panels
from sslcore.tasks.base import StepOutput, register_task


@dataclass(frozen=True)
class MoCoConfig(MomentumConfig):
    temperature: float = param(0.2, "Softmax temperature of the InfoNCE loss (MoCo v3 on CIFAR: 0.2).",
                               min=0.01, max=10.0)
    projection_dim: int = param(128, "Output size of the projector and the predictor (MoCo v3: 256).", min=8, max=4096)
    projection_hidden: int = param(1024, "Hidden units of the projector and the predictor (MoCo v3: 4096).",
                                   min=8, max=8192)


@register_task("moco", "Contrastive against a momentum encoder: a view's query must find its key among the batch "
                       "(MoCo v3)")
class MoCo(MomentumTwoViewTask):
    Config = MoCoConfig
    config: MoCoConfig
    display_name = "MoCo v3"
    panels = two_view_panels(
        "MoCo v3 trains each view's query to find the other view's key, made by a slowly moving average "
        "of the network, among the keys of the whole batch.")

    def __init__(self, encoder: Encoder, config: MoCoConfig, image_shape: tuple[int, int, int]) -> None:
        d, hidden = config.projection_dim, config.projection_hidden
        projector = projection_mlp(encoder.feature_dim, hidden, d, layers=3, out_norm=True)
        super().__init__(encoder, config, image_shape, projector)
        self.predictor = projection_mlp(d, hidden, d)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        views = torch.cat(self.two_views(images, generator))
        q1, q2 = self.predictor(self.projector(self.encoder(views))).chunk(2)
        k1, k2 = self.target(views).chunk(2)
        loss1, acc1 = info_nce_loss(q1, k2, self.config.temperature)
        loss2, acc2 = info_nce_loss(q2, k1, self.config.temperature)
        return StepOutput(loss=(loss1 + loss2) / 2, metrics={"pair_acc": (acc1 + acc2) / 2})
