"""Fine-tuning: the SSL encoder + a linear head, trained end to end on the labelled subset.

The third step of the SSL pipeline (Chen et al. 2020, SimCLR §4.2 "semi-supervised"): instead of
freezing the self-supervised features (the linear probe), every weight is trained on the few labels.
It is the supervised baseline with one difference, the initial weights, so the comparison is fair by
construction: same architecture, same labelled images, same augmentations, same step budget and the
same early stopping on a held-out part of the labelled subset (never the test split).
"""
from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from sslcore.evaluation.supervised import SupervisedBaseline
from sslcore.models import build_encoder, linear_classifier


class FineTuned(SupervisedBaseline):
    """:class:`SupervisedBaseline` whose encoder starts from ``encoder_state`` (a trained encoder's state_dict).

    The state includes the encoder's input normalisation (mean/std buffers of the SSL run's training
    split), so, unlike the baseline, nothing is re-estimated from the labelled subset. All other
    parameters and learned attributes are the baseline's.
    """

    def __init__(self, encoder_state: Mapping[str, torch.Tensor] | None = None, encoder_name: str = "convnet",
                 width: int = 32, image_shape: tuple[int, ...] | None = None, *, depth: int = 2,
                 norm: str = "batch", patch_size: int = 4, augment: bool = True,
                 max_steps: int = 300, batch_size: int = 64, lr: float = 2e-3, weight_decay: float = 5e-4,
                 holdout_fraction: float = 0.2, eval_every: int = 25, patience: int = 4,
                 steps_without_holdout: int = 100, precision: str = "auto", device: str = "auto",
                 random_state: int = 0) -> None:
        super().__init__(encoder_name, width, image_shape, depth=depth, norm=norm, patch_size=patch_size,
                         augment=augment, max_steps=max_steps,
                         batch_size=batch_size, lr=lr, weight_decay=weight_decay, holdout_fraction=holdout_fraction,
                         eval_every=eval_every, patience=patience, steps_without_holdout=steps_without_holdout,
                         precision=precision, device=device, random_state=random_state)
        self.encoder_state = encoder_state

    def _build_model(self, train_images: torch.Tensor) -> nn.Sequential:
        """The pretrained encoder + a fresh linear head (seeded by ``random_state``)."""
        if self.encoder_state is None:
            raise ValueError("FineTuned needs encoder_state: the state_dict of a trained encoder")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            encoder = build_encoder(self.encoder_name, self.image_shape_, width=self.width, depth=self.depth,
                                    norm=self.norm, patch_size=self.patch_size)
            encoder.load_state_dict(dict(self.encoder_state))
            head = linear_classifier(encoder.feature_dim, len(self.classes_))
        return nn.Sequential(encoder, head).to(self.device_)
