"""A pretext task made ready for several processes: synchronised BatchNorm, then DistributedDataParallel.

With one process :func:`wrap` returns the task unchanged.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parallel import DistributedDataParallel

from sslcore import distributed


class GatheredBatchNorm(_BatchNorm):
    """BatchNorm over the global batch of all processes, for CPU (gloo) runs.

    ``torch.nn.SyncBatchNorm`` does this on CUDA but refuses CPU tensors. Each rank computes its per-channel
    mean, sum of squared deviations and count; the (rank, 3, C) table is gathered with gradients and merged
    with the parallel-variance formula (Chan et al. 1979), which stays accurate where E[x^2] - E[x]^2 would not.
    Evaluation (running statistics) needs no communication. Same parameters and buffers as BatchNorm, so
    checkpoints load into either.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C) or (B, C, ...) -> same shape, fp32 (as autocast runs BatchNorm)."""
        if not (self.training and distributed.active()):  # (rank 0 alone evaluates in eval mode)
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        x = x.float()
        mean = x.mean(dims)  # (C,)
        m2 = (x - mean.view(shape)).square().sum(dims)
        count = torch.full_like(mean, x.numel() / x.shape[1])
        table = distributed.gather(torch.stack([mean, m2, count]).unsqueeze(0))  # (ranks, 3, C)
        means, m2s, counts = table.unbind(1)
        total = counts.sum(0)
        global_mean = (means * counts).sum(0) / total
        var = (m2s + counts * (means - global_mean).square()).sum(0) / total  # biased, as BatchNorm normalises
        self._update_running_stats(global_mean.detach(), var.detach(), total[0].item())
        out = (x - global_mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: float) -> None:
        if (not self.track_running_stats or self.running_mean is None or self.running_var is None
                or self.num_batches_tracked is None):
            return
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(var * n / max(n - 1.0, 1.0), factor)  # unbiased, as BatchNorm keeps it


def gathered_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm replaced by :class:`GatheredBatchNorm`, sharing its parameters and buffers."""
    out = module
    if isinstance(module, _BatchNorm):
        out = GatheredBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, gathered_batchnorm(child))
    return out


def sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm statistics over the global batch: PyTorch's SyncBatchNorm on CUDA, ours elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return gathered_batchnorm(module)


def wrap(task: nn.Module, device: torch.device, sync_bn: bool) -> nn.Module:
    """The module a training step calls: ``task`` itself alone, DistributedDataParallel around it otherwise.

    ``task`` is changed in place (its BatchNorms synchronised when ``sync_bn``), so checkpoints and callbacks
    keep using it directly. DDP broadcasts rank 0's parameters and buffers, so every rank starts identical.
    """
    if not distributed.active():
        return task
    if sync_bn:
        sync_batchnorm(task, device)  # the task is no BatchNorm itself, so its children are replaced in place
    return DistributedDataParallel(task, device_ids=[device.index] if device.type == "cuda" else None)
