"""Frozen-feature extraction: the bridge from a trained encoder to scikit-learn style evaluation."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sslcore.data.base import dataset_type


@torch.no_grad()
def encode(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Raw samples (uint8 images (N, C, H, W) or float32 rows (N, F)) -> float32 features (N, D), on the
    encoder's device, in eval mode.

    The encoder's train/eval mode is restored afterwards, so this is safe mid-training.
    """
    device = next(encoder.parameters()).device
    to_input = dataset_type(images).to_input
    was_training = encoder.training
    encoder.eval()
    try:
        chunks = [encoder(to_input(images[i:i + batch_size].to(device, non_blocking=True))).float()
                  for i in range(0, images.shape[0], batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(chunks)


def extract_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Raw samples (uint8 images (N, C, H, W) or float32 rows (N, F)) -> numpy float32 features (N, D)."""
    return encode(encoder, images, batch_size).cpu().numpy()
