"""DINO, self-distillation with no labels (Caron et al. 2021): a student network learns to give the same
distribution over K prototypes as a teacher, an EMA copy of itself, shown another view of the image.

Two tricks keep it from collapsing, and they pull in opposite directions: the teacher's outputs are
centred (a running mean is subtracted, so no single prototype wins every image) and sharpened (a low
temperature, so the uniform answer is not a solution either). The teacher's temperature warms up from
a softer value, and optional small crops, seen by the student only, teach local-to-global matching.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sslcore.config_schema import param
from sslcore.losses import dino_center, dino_loss
from sslcore.models import Encoder, projection_mlp
from sslcore.tasks._two_view import MomentumConfig, MomentumTwoViewTask, two_view_panels
from sslcore.tasks.base import StepOutput, register_task


@dataclass(frozen=True)
class DINOConfig(MomentumConfig):
    momentum: float = param(0.99, "Base momentum of the teacher (EMA of the student), rising to 1 along a cosine "
                            "(DINO: 0.996 over 100+ epochs; lower suits short runs).", min=0.0, max=1.0)
    prototypes: int = param(1024, "Output size K: the prototypes the distributions are over (DINO: 65536; CIFAR 4096).",
                            min=2, max=65536)
    projection_hidden: int = param(512, "Hidden units of the head's MLP (DINO: 2048).", min=8, max=8192)
    bottleneck_dim: int = param(64, "Size of the L2-normalised bottleneck before the prototypes (DINO: 256). Smaller "
                                "spreads the untrained cosines more, so a short run starts learning sooner.",
                                min=8, max=4096)
    student_temperature: float = param(0.1, "Softmax temperature of the student (DINO: 0.1).", min=0.01, max=10.0)
    teacher_temperature: float = param(0.04, "Teacher temperature after the warm-up; lower = sharper targets "
                                       "(DINO: 0.04, 0.07 for long runs).", min=0.01, max=10.0)
    warmup_teacher_temperature: float = param(0.02, "Teacher temperature at the start of the run: sharp targets "
                                              "break the symmetry of a fresh network sooner (DINO: 0.04 for 100+ "
                                              "epochs).",
                                              min=0.01, max=10.0)
    teacher_temperature_warmup: float = param(0.3, "Share of the run over which the teacher temperature rises linearly "
                                              "(DINO: 30 of 100 epochs).", min=0.0, max=1.0)
    center_momentum: float = param(0.9, "Momentum of the running centre subtracted from the teacher's outputs "
                                   "(DINO: 0.9).", min=0.0, max=1.0)
    local_crops: int = param(0, "Extra small crops per image, at half resolution, seen by the student only "
                             "(multi-crop; DINO: 6-10). Each costs about a quarter of a full view.", min=0, max=10)
    local_crop_scale: float = param(0.3, "Largest area of a small crop, as a fraction of the image (DINO: 0.4).",
                                    min=0.1, max=1.0, advanced=True)


class DINOHead(nn.Module):
    """DINO's projection head: MLP -> L2-normalised bottleneck -> cosine scores against K prototypes.

    (B, in_dim) -> (B, K). The prototypes are unit vectors (the paper's weight-normalised last layer with
    its norm fixed at 1), so the logits are cosines in [-1, 1] and only the temperatures set their scale.
    """

    def __init__(self, in_dim: int, hidden_dim: int, bottleneck_dim: int, prototypes: int) -> None:
        super().__init__()
        self.mlp = projection_mlp(in_dim, hidden_dim, bottleneck_dim, layers=3)
        self.prototypes = nn.Parameter(torch.randn(prototypes, bottleneck_dim) / bottleneck_dim ** 0.5)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(h), dim=1) @ F.normalize(self.prototypes, dim=1).T


@register_task("dino", "Self-distillation: match a moving-average teacher's sharpened, centred output on another "
                       "view (DINO)")
class DINO(MomentumTwoViewTask):
    Config = DINOConfig
    config: DINOConfig
    center: torch.Tensor  # buffers (register_buffer), declared for the type checker
    progress: torch.Tensor
    display_name = "DINO"
    learning_metric = "kl"
    panels = two_view_panels(
        "DINO trains the student to give, for one view, the same sharpened distribution over prototypes "
        "as a slowly moving-average teacher gives for the other.")

    def __init__(self, encoder: Encoder, config: DINOConfig, image_shape: tuple[int, int, int]) -> None:
        head = DINOHead(encoder.feature_dim, config.projection_hidden, config.bottleneck_dim, config.prototypes)
        super().__init__(encoder, config, image_shape, head)
        self.register_buffer("center", torch.zeros(config.prototypes))
        # Share of the run done, kept as a buffer so a resumed run knows its teacher temperature.
        self.register_buffer("progress", torch.zeros(()))
        scale_min = min(0.05, config.local_crop_scale)
        self.local_view = dataclasses.replace(self.view, crop_scale_min=scale_min,
                                              crop_scale_max=config.local_crop_scale)
        self.local_size = (max(1, image_shape[1] // 2), max(1, image_shape[2] // 2))

    def teacher_temperature(self) -> torch.Tensor:
        """The teacher temperature now: linear from the warm-up value to the final one, a function of
        ``progress`` (computed on the device: reading the buffer back would stall a GPU every step)."""
        c = self.config
        ramp = (self.progress / c.teacher_temperature_warmup).clamp(max=1.0) if c.teacher_temperature_warmup > 0 \
            else torch.ones_like(self.progress)
        return c.warmup_teacher_temperature + (c.teacher_temperature - c.warmup_teacher_temperature) * ramp

    def local_crops(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``local_crops`` small crops per image at half resolution: (local_crops * B, C, H/2, W/2)."""
        crops = [self.local_view(images, generator) for _ in range(self.config.local_crops)]
        # Antialiased: the crop is sampled at full size first, and halving it must not alias thin strokes.
        return F.interpolate(torch.cat(crops), size=self.local_size, mode="bilinear", antialias=True,
                             align_corners=False)

    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        b = images.shape[0]
        views = torch.cat(self.two_views(images, generator))
        student = [self.projector(self.encoder(views))]
        if self.config.local_crops:  # a separate pass: another resolution (and BatchNorm sees crops alone)
            student.append(self.projector(self.encoder(self.local_crops(images, generator))))
        student_logits = torch.cat(student).view(-1, b, self.config.prototypes)  # (V_s, B, K)
        teacher_logits = self.target(views).view(2, b, self.config.prototypes)  # (2, B, K)
        temperature = self.teacher_temperature()
        loss = dino_loss(student_logits, teacher_logits, self.center, self.config.student_temperature, temperature)
        with torch.no_grad():
            # DINO's collapse monitors (its Figure 7): the teacher's entropy (log K = uniform, 0 = one prototype
            # for everything) and the KL from teacher to student, the part of the loss the student can still learn.
            teacher_probs = torch.softmax((teacher_logits.float() - self.center) / temperature, dim=-1)
            entropy = -(teacher_probs * teacher_probs.clamp_min(1e-12).log()).sum(dim=-1).mean()
            self.center.copy_(dino_center(self.center, teacher_logits, self.config.center_momentum))
        metrics = {"teacher_temperature": temperature, "teacher_entropy": entropy, "kl": loss.detach() - entropy}
        return StepOutput(loss=loss, metrics=metrics)

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        super().after_optimizer_step(step, total_steps)
        self.progress.fill_((step + 1) / max(1, total_steps))
