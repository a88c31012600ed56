"""SimCLR (Chen et al. 2020): two random augmentations of each image must map close together,
and away from every other image in the batch (NT-Xent loss on a projection head).

The augmentations define what "the same thing" means: crops teach invariance to position and scale,
colour jitter to lighting. Features are taken before the projection head, as in the paper.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from sslcore import augment
from sslcore.config import TaskConfig, param
from sslcore.losses import nt_xent_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks.base import PretextTask, StepOutput, batched_eval, register_task, to_uint8
from sslcore.tasks.panels import ImageColumn, SnapshotPanels, Summary, Value


@dataclass(frozen=True)
class SimCLRConfig(TaskConfig):
    temperature: float = param(0.2, "Softmax temperature of the NT-Xent loss; lower = harder negatives.", min=0.01, max=10.0)
    projection_dim: int = param(128, "Output size of the projection head.", min=8, max=4096)
    projection_hidden: int = param(512, "Hidden units of the projection head.", min=8, max=8192)
    crop_scale_min: float = param(0.3, "Smallest random crop, as a fraction of the image area.", min=0.05, max=1.0)
    rotation_deg: float = param(10.0, "Largest random rotation of a view, in degrees.", min=0.0, max=180.0)
    jitter: float = param(0.4, "Strength of brightness/contrast (and, for colour images, saturation/hue) jitter.", min=0.0, max=1.0)
    flip: str = param("auto", "Random horizontal flips: auto = only for colour images (digits are not mirror-symmetric).",
                      choices=("auto", "on", "off"))


@register_task("simclr", "Contrastive: two augmented crops of an image must match each other, not other images (NT-Xent)")
class SimCLR(PretextTask):
    Config = SimCLRConfig
    config: SimCLRConfig
    display_name = "SimCLR"
    panels = SnapshotPanels(
        images=(ImageColumn("original", "original"), ImageColumn("view1", "view 1"), ImageColumn("view2", "view 2")),
        # Higher is better: training pulls two views of one image together (a rise is good news, green).
        values=(Value("pair_similarity", "similarity", "{:.2f}", higher_is_better=True),),
        caption="similarity {pair_similarity:.2f}",
        worst_first="pair_similarity", worst_label="Least similar pairs first",
        summary=Summary("pair_similarity", "Mean view similarity", axis="similarity", fmt="{:.3f}"),
        explanation="Two random augmentations (crop, small rotation, brightness and contrast jitter) of the same "
                    "test image. The model is trained to give both views the same features and other images "
                    "different ones, so these pairs show what *the same thing* means to it. Similarity is the "
                    "cosine between the two views' encoder features (1 = identical). Even an untrained network "
                    "finds two crops of one image fairly similar; what training adds is that *different* images "
                    "end up apart (see Embeddings).")

    def __init__(self, encoder: Encoder, config: SimCLRConfig, image_shape: tuple[int, int, int]) -> None:
        super().__init__(encoder, config, image_shape)
        self.projector = projection_mlp(encoder.feature_dim, config.projection_hidden, config.projection_dim)
        default = augment.default_view_augment(image_shape[0], image_shape[1])
        self.view = dataclasses.replace(default, crop_scale_min=config.crop_scale_min, rotation_deg=config.rotation_deg,
                                        jitter_strength=config.jitter,
                                        flip={"auto": default.flip, "on": True, "off": False}[config.flip])

    def two_views(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return self.view(images, generator), self.view(images, generator)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        v1, v2 = self.two_views(images, generator)
        # One encoder pass over both views: BatchNorm then sees one batch, and it is faster.
        z = self.projector(self.encoder(torch.cat([v1, v2])))
        loss, accuracy = nt_xent_loss(*z.chunk(2), temperature=self.config.temperature)
        return StepOutput(loss=loss, metrics={"pair_acc": accuracy})

    def projection(self, features: torch.Tensor) -> torch.Tensor:
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

    def evaluate(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        def pair_accuracy(x: torch.Tensor) -> dict[str, torch.Tensor]:
            v1, v2 = self.two_views(x, generator)
            z = self.projector(self.encoder(torch.cat([v1, v2])))
            _, acc = nt_xent_loss(*z.chunk(2), temperature=self.config.temperature)
            return {"test_pair_acc": acc.expand(x.shape[0])}

        return batched_eval(pair_accuracy, images)
