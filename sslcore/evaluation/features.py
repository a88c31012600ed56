"""Frozen-feature extraction: the bridge from a trained encoder to scikit-learn style evaluation."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


@torch.no_grad()
def encode(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """uint8 images (N, C, H, W) -> float32 features (N, D), on the encoder's device, in eval mode.

    The encoder's train/eval mode is restored afterwards, so this is safe mid-training.
    """
    device = next(encoder.parameters()).device
    was_training = encoder.training
    encoder.eval()
    try:
        chunks = [encoder(images[i:i + batch_size].to(device, non_blocking=True).float().div_(255.0)).float()
                  for i in range(0, images.shape[0], batch_size)]
    finally:
        encoder.train(was_training)
    return torch.cat(chunks)


def extract_features(encoder: nn.Module, images: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """uint8 images (N, C, H, W) -> numpy float32 features (N, D) for the estimators in this package."""
    return encode(encoder, images, batch_size).cpu().numpy()
