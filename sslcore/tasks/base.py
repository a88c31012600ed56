"""What every pretext task is: encoder + heads + loss + view function, in one small class.

A task file defines a config dataclass (fields declared with ``sslcore.config_schema.param``) and a
``PretextTask`` subclass decorated with :func:`register_task`. Nothing else needs editing: the
registry, the CLI, the dashboard's forms and its Reconstructions & views page all read from here.

What a task declares besides its methods (class attributes):

- ``Config``: its config dataclass.
- ``panels``: a :class:`~sslcore.tasks.panels.SnapshotPanels` saying how the arrays ``snapshot`` returns
  are drawn: image columns with titles, per-image values (format, whether higher is better), the caption
  under each image, the value that sorts "worst first", the per-epoch summary number and a plain-words
  explanation. The snapshot file records the task's name, so the viewer finds these panels by it.
- ``display_name``: how a sentence names the method ("SimCLR features beat ..."); default: the
  registered name with spaces for underscores.
- ``requires``: which data and encoders fit (:class:`~sslcore.pairing.DataRequirements`).
- ``train_defaults``: training settings the task starts from where its recipe differs from the shared
  defaults of :class:`~sslcore.config_schema.TrainConfig` (SimSiam's lower learning rate); a value the
  user gives still wins.

Optional methods for joint-embedding methods (BYOL, SimSiam, MoCo, ...), used by the collapse diagnostics
(:mod:`sslcore.evaluation.collapse`): ``two_views`` (two augmented views of a batch) and ``projection``
(the head's output that the loss compares, from encoder features). Both return None by default.
``view_metrics`` scores the monitor's embeddings of those views (SimCLR's test pair accuracy).
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from sslcore.config_schema import TaskConfig
from sslcore.models import Encoder
from sslcore.pairing import DataRequirements
from sslcore.registry import Registry
from sslcore.tasks.panels import SnapshotPanels


@dataclass
class StepOutput:
    """The result of one training step: a scalar loss plus optional extra scalars to log."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class PretextTask(nn.Module, metaclass=ABCMeta):
    """Base class. Subclasses set ``Config`` and ``panels`` and implement the abstract methods.

    Images passed in are float (B, C, H, W) in [0, 1] on the training device.
    ``panels`` tells viewers how to draw the arrays ``snapshot`` returns (see :mod:`sslcore.tasks.panels`).
    ``requires`` says which data and encoders the task fits (see :mod:`sslcore.pairing`).
    """

    Config: ClassVar[type[TaskConfig]]
    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    display_name: ClassVar[str] = ""
    panels: ClassVar[SnapshotPanels]
    requires: ClassVar[DataRequirements] = DataRequirements()
    #: ``TrainConfig`` field -> the value this task's default recipe uses instead of the shared default.
    train_defaults: ClassVar[Mapping[str, object]] = {}
    #: The per-step number that falls as the task learns: "loss", or the name of a ``StepOutput.metrics`` entry
    #: for a task whose loss has a moving floor (DINO's loss includes the teacher's entropy, which it does not
    #: control; what the student learns is the KL part).
    learning_metric: ClassVar[str] = "loss"

    @classmethod
    def settings_problem(cls, config: TaskConfig, image_shape: tuple[int, ...] | None) -> str | None:
        """None if ``config`` fits images of ``image_shape`` (C, H, W; None = not known yet); else one line naming
        the field, the value and what is allowed. For checks a ``param`` bound cannot express (a grid that
        must divide the image side); the config validation calls it, and a task may call it again when built."""
        return None

    def __init__(self, encoder: Encoder, config: TaskConfig, image_shape: tuple[int, ...]) -> None:
        """``image_shape``: the sample shape, (C, H, W) for images or a table's (F,)."""
        super().__init__()
        self.encoder = encoder
        self.config = config
        self.image_shape = image_shape

    @abstractmethod
    def training_step(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        """Build the pretext inputs from ``images`` (B, C, H, W), run the model, return the loss."""

    def forward(self, images: torch.Tensor, generator: torch.Generator) -> StepOutput:
        """The training step, as ``forward``: DistributedDataParallel hooks a module's call, not its methods."""
        return self.training_step(images, generator)

    @abstractmethod
    def make_views(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """What the model is shown for ``images``, without running it (the dashboard's preview).

        Returns named image batches, each (B, C, H, W) in [0, 1].
        """

    @abstractmethod
    def snapshot(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, np.ndarray]:
        """Arrays that show what the model does on ``images`` now (images as uint8 (N, C, H, W)).

        Returns pictures as uint8 (N, C, H, W) (see :func:`to_uint8`) and per-image numbers as (N,):
        at least every array ``panels.required_arrays()`` names. Called in eval mode under ``torch.no_grad``.
        """

    def two_views(self, images: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Two augmented views (B, C, H, W) each of ``images``, for methods that train on view pairs.

        The trainer's monitor encodes them every epoch for the alignment and uniformity diagnostics
        (:mod:`sslcore.evaluation.collapse`). None (the default) for single-view tasks.
        """
        return None

    def projection(self, features: torch.Tensor) -> torch.Tensor | None:
        """The embeddings the loss compares, from encoder features (B, D): the projection head's output (B, D').

        The monitor watches them for collapse (a head can collapse while the encoder's features still look
        spread out) and takes alignment/uniformity on them. None (the default) for tasks without such a head.
        """
        return None

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
        """Pretext metrics on held-out images (e.g. test reconstruction error); empty by default."""
        return {}

    def view_metrics(self, view1: torch.Tensor, view2: torch.Tensor) -> dict[str, float]:
        """Pretext metrics of two views' fp32 embeddings (N, D'), as :meth:`projection` gives them, of N held-out
        images; empty by default. The monitor embeds these views every epoch for the alignment and uniformity
        figures anyway, so a metric of view pairs (SimCLR's test pair accuracy) costs no second pass; it calls
        this on chunks of the training batch's size, so N is the batch a training step sees.

        Held-out scores are named ``test_<what>_acc`` (a fraction, higher is better), ``test_<what>_mse`` (an
        error), ``test_<what>_gap`` (lower is better) or ``test_loss`` (the task's loss on the held-out views), here
        and in :meth:`evaluate`; a step metric ``<what>_acc`` (or ``loss``) is the same score on training batches.
        The Train page charts them by these names, each beside its training twin."""
        return {}

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        """Per-step hook after the optimiser update (momentum/EMA targets live here); no-op by default."""


TASKS: Registry[type[PretextTask]] = Registry("task")


def register_task(name: str, description: str) -> Callable[[type[PretextTask]], type[PretextTask]]:
    """Class decorator: register a task under ``name`` and stamp its name on the task and its Config.

    A task must declare its snapshot ``panels``; ``display_name`` defaults to ``name`` with spaces.
    """

    def decorator(cls: type[PretextTask]) -> type[PretextTask]:
        if not isinstance(getattr(cls, "panels", None), SnapshotPanels):
            raise TypeError(f"task {name!r} must set panels = SnapshotPanels(...) (see sslcore.tasks.panels)")
        cls.name = name
        cls.description = description
        cls.display_name = cls.__dict__.get("display_name") or name.replace("_", " ")
        cls.Config.name = name
        return TASKS.register(name, description)(cls)

    return decorator


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Images in [0, 1] (N, C, H, W) -> uint8 numpy (N, C, H, W), for compact snapshot files."""
    return (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def batched_eval(fn: Callable[[torch.Tensor], dict[str, torch.Tensor]], images: torch.Tensor,
                 batch_size: int = 512) -> dict[str, float]:
    """Average per-sample metrics returned by ``fn`` (each (B,)) over ``images`` in chunks."""
    sums: dict[str, float] = {}
    for start in range(0, images.shape[0], batch_size):
        for key, values in fn(images[start:start + batch_size]).items():
            sums[key] = sums.get(key, 0.0) + float(values.float().sum())
    return {k: v / images.shape[0] for k, v in sums.items()}
