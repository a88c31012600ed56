"""Momentum (EMA) target networks, shared by BYOL, MoCo v3 and DINO.

A target is a frozen copy of an online module that follows it slowly:
target <- m * target + (1 - m) * online after each optimiser step (BYOL, Grill et al. 2020; MoCo, He et
al. 2020). Its parameters have ``requires_grad=False``, so the optimiser (which only takes trainable
parameters) never updates it, and a task that keeps it as a submodule saves it in every checkpoint: a
resumed run continues from the very same target.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def momentum_target(online: nn.Module) -> nn.Module:
    """A frozen deep copy of ``online`` (same weights and buffers, ``requires_grad=False`` everywhere)."""
    target = copy.deepcopy(online)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """In place: every target parameter <- momentum * target + (1 - momentum) * online parameter.

    ``momentum`` in [0, 1]; 1 leaves the target as it is, 0 copies the online weights. Buffers (BatchNorm
    running statistics) are not averaged: the target keeps its own, updated by its own forward passes.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    targets, onlines = list(target.parameters()), list(online.parameters())
    if len(targets) != len(onlines):
        raise ValueError(f"target has {len(targets)} parameter tensors, online {len(onlines)}: not a copy")
    for t, o in zip(targets, onlines, strict=True):
        t.lerp_(o, 1.0 - momentum)
