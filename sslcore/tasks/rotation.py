"""Rotation prediction (RotNet, Gidaris et al. 2018): rotate by 0/90/180/270 degrees, predict which.

Telling which way is up requires knowing what the object is and how it is usually drawn, so the
features pick up shape and layout without labels. Each image is shown in all four rotations.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslcore import augment
from sslcore.config_schema import ConfigError, TaskConfig, param
from sslcore.models import Encoder
from sslcore.tasks.base import PretextTask, StepOutput, batched_eval, register_task, to_uint8
from sslcore.tasks.panels import ImageColumn, SnapshotPanels, Summary, guess_values


@dataclass(frozen=True)
class RotationConfig(TaskConfig):
    all_rotations: bool = param(True, "Show every image in all 4 rotations per step (RotNet); "
                                      "else one random rotation each.")
    hidden_dim: int = param(256, "Hidden units of the rotation classifier head (0 = linear head).", min=0, max=4096)


@register_task("rotation", "Rotate by 0/90/180/270 degrees and predict which rotation was applied (RotNet)")
class RotationPrediction(PretextTask):
    Config = RotationConfig
    config: RotationConfig
    display_name = "rotation prediction"
    panels = SnapshotPanels(
        images=(ImageColumn("original", "original"), ImageColumn("rotated", "rotated input")),
        values=guess_values("predicted_angle", "true_angle"),
        caption="pred {predicted_angle}° ({confidence:.0%}) {mark} · true {true_angle}°",
        worst_first="sure_and_right", worst_label="Wrong and least sure first",
        summary=Summary("right", "Rotation accuracy", axis="accuracy", fmt="{:.0%}", percent=True),
        required=("true_angle", "predicted_angle"),
        explanation="Each test image is turned by a random 0°, 90°, 180° or 270°, and the model says which. It can "
                    "only be right by knowing which way up a thing is drawn, so its features must capture shape. "
                    "Under each image: the predicted angle, how sure the model is, and whether it was right.")

    def __init__(self, encoder: Encoder, config: RotationConfig, image_shape: tuple[int, int, int]) -> None:
        if image_shape[1] != image_shape[2]:
            raise ConfigError(f"task rotation needs square images; this dataset has {image_shape[1]}x{image_shape[2]}")
        super().__init__(encoder, config, image_shape)
        d = encoder.feature_dim
        self.head: nn.Module = (nn.Linear(d, 4) if config.hidden_dim == 0 else
                                nn.Sequential(nn.Linear(d, config.hidden_dim), nn.ReLU(inplace=True),
                                              nn.Linear(config.hidden_dim, 4)))

    def rotated_batch(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(rotated images (B', C, H, W), rotation index k (B',) in 0..3); B' = 4B with all_rotations."""
        b = images.shape[0]
        if self.config.all_rotations:
            k = torch.arange(4, device=images.device).repeat_interleave(b)
            images = images.repeat(4, 1, 1, 1)
        else:
            k = torch.randint(0, 4, (b,), generator=generator, device=images.device)
        return augment.rotate90(images, k), k

    def logits(self, rotated: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> rotation logits (B, 4)."""
        return self.head(self.encoder(rotated))

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        rotated, k = self.rotated_batch(images, generator)
        logits = self.logits(rotated)
        accuracy = (logits.argmax(dim=1) == k).float().mean()
        return StepOutput(loss=F.cross_entropy(logits.float(), k), metrics={"rotation_acc": accuracy})

    def _random_rotation(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        k = torch.randint(0, 4, (images.shape[0],), generator=generator, device=images.device)
        return augment.rotate90(images, k), k

    def make_views(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return {f"{90 * k}°": augment.rotate90(images, torch.full((images.shape[0],), k, device=images.device))
                for k in range(4)}

    def snapshot(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        rotated, k = self._random_rotation(images, generator)
        probs = self.logits(rotated).float().softmax(dim=1)
        confidence, predicted = probs.max(dim=1)
        return {"original": to_uint8(images), "rotated": to_uint8(rotated), "true_angle": (90 * k).cpu().numpy(),
                "predicted_angle": (90 * predicted).cpu().numpy(), "confidence": confidence.cpu().numpy()}

    def evaluate(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        def correct(x: torch.Tensor) -> dict[str, torch.Tensor]:
            rotated, k = self._random_rotation(x, generator)
            return {"test_rotation_acc": (self.logits(rotated).argmax(dim=1) == k).float()}

        return batched_eval(correct, images)
