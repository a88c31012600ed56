"""Shared machinery of the two-view (joint-embedding) methods: SimCLR, BYOL, SimSiam, MoCo v3, Barlow Twins,
VICReg and DINO all show the encoder two random augmentations of each image and ask their embeddings
to agree; they differ in the heads and the loss that keeps the embeddings from collapsing to a constant.

:class:`TwoViewTask` draws the views and writes the "views" snapshot; :class:`MomentumTwoViewTask` adds
an EMA target copy of the encoder and projector (BYOL, MoCo v3, DINO's teacher), updated after every
optimiser step with BYOL's cosine momentum schedule. Features for evaluation are the encoder's output,
before any head, as in all these papers.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslcore import augment
from sslcore.config_schema import TaskConfig, param
from sslcore.engine.schedule import cosine_momentum
from sslcore.models import Encoder
from sslcore.models.momentum import ema_update, momentum_target
from sslcore.tasks.base import PretextTask, to_uint8
from sslcore.tasks.panels import ImageColumn, SnapshotPanels, Summary, Value

_SIMILARITY = ("Similarity is the cosine between the two views' encoder features (1 = identical). Even an untrained "
               "network finds two crops of one image fairly similar. ")
_COLLAPSE = ("If every pair reaches 1.00 and all images look alike on the Embeddings page, the features have "
             "collapsed: the same output for every image.")


@dataclass(frozen=True)
class TwoViewConfig(TaskConfig):
    """The augmentation fields every two-view method shares (folded away in the form: the defaults fit)."""

    crop_scale_min: float = param(0.3, "Smallest random crop, as a fraction of the image area.", min=0.05, max=1.0,
                                  advanced=True)
    rotation_deg: float = param(10.0, "Largest random rotation of a view, in degrees.", min=0.0, max=180.0,
                                advanced=True)
    jitter: float = param(0.4, "Strength of brightness/contrast (and, for colour images, saturation/hue) jitter.",
                          min=0.0, max=1.0, advanced=True)
    flip: str = param("auto", "Random horizontal flips: auto = only for colour images (digits are not "
                      "mirror-symmetric).", choices=("auto", "on", "off"), advanced=True)


@dataclass(frozen=True)
class MomentumConfig(TwoViewConfig):
    """Adds the base momentum of the EMA target (a subclass may redeclare it with its paper's default)."""

    momentum: float = param(0.99, "Base momentum of the EMA target network; it rises to 1 along a cosine over the run "
                            "(BYOL, Grill et al. 2020). Higher = a slower, steadier target.", min=0.0, max=1.0)


def two_view_panels(method: str) -> SnapshotPanels:
    """The Views page of a two-view task: original | view 1 | view 2, with the pair's feature similarity.

    ``method``: one or two plain sentences on what the method asks of the two views.
    """
    return SnapshotPanels(
        images=(ImageColumn("original", "original"), ImageColumn("view1", "view 1"), ImageColumn("view2", "view 2")),
        # Higher is better: training pulls two views of one image together (a rise is good news, green).
        values=(Value("pair_similarity", "similarity", "{:.2f}", higher_is_better=True),),
        caption="similarity {pair_similarity:.2f}",
        worst_first="pair_similarity", worst_label="Least similar pairs first",
        summary=Summary("pair_similarity", "Mean view similarity", axis="similarity", fmt="{:.3f}", judged=False),
        explanation="Two random augmentations (crop, small rotation, brightness and contrast jitter) of the same "
                    f"test image. {method} {_SIMILARITY}{_COLLAPSE}")


class TwoViewTask(PretextTask):
    """Two random views per image; snapshots show both and the cosine similarity of their features.

    Subclasses set ``self.projector`` (encoder features (B, F) -> embeddings (B, D)) for :meth:`projected_views`.
    """

    config: TwoViewConfig
    projector: nn.Module
    panels = two_view_panels("The model is trained to give both views the same features.")

    def __init__(self, encoder: Encoder, config: TwoViewConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__(encoder, config, image_shape)
        default = augment.default_view_augment(image_shape[0], image_shape[1])
        self.view = dataclasses.replace(default, crop_scale_min=config.crop_scale_min, rotation_deg=config.rotation_deg,
                                        jitter_strength=config.jitter,
                                        flip={"auto": default.flip, "on": True, "off": False}[config.flip])

    def two_views(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> two independent random views, each (B, C, H, W)."""
        return self.view(images, generator), self.view(images, generator)

    def projected_views(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> the two views' embeddings through encoder and ``self.projector``, each (B, D).

        Both views go through the networks as one batch: BatchNorm sees one batch, and it is faster.
        """
        z = self.projection(self.encoder(torch.cat(self.two_views(images, generator))))
        return z[:images.shape[0]], z[images.shape[0]:]

    def projection(self, features: torch.Tensor) -> torch.Tensor:
        """Encoder features (B, F) -> the embeddings the loss compares (B, D): the projector's output."""
        return self.projector(features)

    def make_views(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        v1, v2 = self.two_views(images, generator)
        return {"view 1": v1, "view 2": v2}

    def snapshot(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        v1, v2 = self.two_views(images, generator)
        h = F.normalize(self.encoder(torch.cat([v1, v2])).float(), dim=1)
        h1, h2 = h.chunk(2)
        return {"original": to_uint8(images), "view1": to_uint8(v1), "view2": to_uint8(v2),
                "pair_similarity": (h1 * h2).sum(dim=1).cpu().numpy()}


class MomentumTwoViewTask(TwoViewTask):
    """A two-view task whose targets come from an EMA copy of (encoder, projector).

    The copies are submodules with ``requires_grad=False``: the optimiser skips them and checkpoints keep
    them, so a resumed run continues with the same target.
    """

    config: MomentumConfig

    def __init__(self, encoder: Encoder, config: MomentumConfig, image_shape: tuple[int, int, int],
                 projector: nn.Module) -> None:
        super().__init__(encoder, config, image_shape)
        self.projector = projector
        self.target_encoder = momentum_target(encoder)
        self.target_projector = momentum_target(projector)

    @torch.no_grad()
    def target(self, views: torch.Tensor) -> torch.Tensor:
        """Target embeddings (B, D) of ``views`` (B, C, H, W), without gradient."""
        return self.target_projector(self.target_encoder(views))

    def momentum(self, step: int, total_steps: int) -> float:
        """The EMA momentum after optimiser step ``step`` (a pure function of the step)."""
        return cosine_momentum(step, total_steps, self.config.momentum)

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        m = self.momentum(step, total_steps)
        ema_update(self.target_encoder, self.encoder, m)
        ema_update(self.target_projector, self.projector, m)
