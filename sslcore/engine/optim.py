"""The optimisers the engine trains with: AdamW and SGD with Nesterov momentum.

Why not ``torch.optim``: its first use in a process imports ``torch._dynamo`` (for ``torch.compile``, which
sslcore does not use), and that import took 1.0-1.3 s of every training run's, worker's and evaluation's
start-up on a 2-core AMD EPYC, more than the rest of the start after ``import torch``. These two classes do
what ``torch.optim.AdamW`` and ``torch.optim.SGD(momentum=..., nesterov=True)`` do on their default eager
path (Loshchilov & Hutter's decoupled weight decay; Sutskever et al.'s Nesterov momentum), with the same
per-parameter state under the same names, and ``state_dict()`` / ``load_state_dict()`` in torch's format:
checkpoints written with either load into the other (tested, as is step-for-step agreement with torch).

Each group's learning rate is read at every ``step()``, so a schedule sets ``group["lr"]`` beforehand, as the
trainer does. The updates use ``torch._foreach_*`` kernels, one call per group, as torch's own optimisers do
on GPUs.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch

ParamGroups = Iterable[torch.Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Parameter groups, per-parameter state, ``zero_grad`` and torch-format (de)serialisation."""

    defaults: dict[str, Any]
    #: Per-parameter state entries that hold a tensor shaped like the parameter (loaded in its dtype/device).
    _moment_keys: tuple[str, ...] = ()

    def __init__(self, params: ParamGroups, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        given: list[Any] = list(params)
        if not given:
            raise ValueError("the optimiser got an empty list of parameters")
        groups: list[dict[str, Any]] = given if isinstance(given[0], dict) else [{"params": given}]
        self.param_groups: list[dict[str, Any]] = []
        for group in groups:
            params_of_group = list(group["params"])
            if any(not isinstance(p, torch.Tensor) for p in params_of_group):
                raise TypeError("optimiser parameters must be tensors")
            self.param_groups.append({**defaults, **{k: v for k, v in group.items() if k != "params"},
                                      "params": params_of_group})
        self.state: dict[torch.Tensor, dict[str, Any]] = {}

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        raise NotImplementedError

    def _groups_with_grads(self) -> Iterator[tuple[dict[str, Any], list[torch.Tensor], list[torch.Tensor]]]:
        """(group, its parameters that have a gradient, those gradients) for each group with any."""
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                yield group, params, [p.grad for p in params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_().zero_()

    def state_dict(self) -> dict[str, Any]:
        """{"state": {index: {...}}, "param_groups": [{options..., "params": [index, ...]}]}, as torch writes it
        (parameters numbered in group order; the state holds the live tensors, not copies)."""
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": [index[id(p)] for p in group["params"]]})
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take the options and per-parameter state of ``state_dict`` (ours or torch's); ValueError when its
        groups do not match this optimiser's parameters (another model's checkpoint)."""
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"the saved optimiser state has {len(saved_groups)} parameter groups, this optimiser "
                             f"{len(self.param_groups)}: it belongs to another model")
        by_index: dict[int, torch.Tensor] = {}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError("the saved optimiser state's parameter groups differ in size from this "
                                 "optimiser's: it belongs to another model")
            by_index.update(zip(saved["params"], group["params"], strict=True))
        self.state = {}
        for key, entries in state_dict["state"].items():
            param = by_index[int(key)]
            self.state[param] = {name: self._loaded(name, value, param) for name, value in entries.items()}
        for saved, group in zip(saved_groups, self.param_groups, strict=True):
            group.update({k: v for k, v in saved.items() if k != "params"})

    def _loaded(self, name: str, value: Any, param: torch.Tensor) -> Any:
        if name in self._moment_keys and isinstance(value, torch.Tensor):
            return value.to(device=param.device, dtype=param.dtype)
        return value


class AdamW(Optimizer):
    """Adam with decoupled weight decay; ``torch.optim.AdamW``'s update, options and state (``step``, a float32
    CPU scalar tensor, ``exp_avg``, ``exp_avg_sq``). amsgrad, maximize and the fused kernels are not offered."""

    _moment_keys = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: ParamGroups, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        if not lr >= 0 or not eps >= 0 or not weight_decay >= 0 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"AdamW needs lr, eps, weight_decay >= 0 and betas in [0, 1): got lr={lr}, "
                             f"betas={betas}, eps={eps}, weight_decay={weight_decay}")
        # The option names torch writes too, so a state_dict loads into torch.optim.AdamW unchanged.
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                                  "differentiable": False, "fused": None, "decoupled_weight_decay": True})

    @torch.no_grad()
    def step(self) -> None:
        for group, params, grads in self._groups_with_grads():
            states = [self._state(p) for p in params]
            lr, weight_decay, eps = group["lr"], group["weight_decay"], group["eps"]
            beta1, beta2 = group["betas"]
            steps = []
            for s in states:
                s["step"] += 1
                steps.append(float(s["step"]))
            exp_avgs, exp_avg_sqs = [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states]
            if weight_decay != 0:
                torch._foreach_mul_(params, 1 - lr * weight_decay)  # decoupled: shrink the weights, not the grad
            torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
            torch._foreach_mul_(exp_avg_sqs, beta2)
            torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
            denominators = torch._foreach_sqrt(exp_avg_sqs)
            torch._foreach_div_(denominators, [(1 - beta2 ** t) ** 0.5 for t in steps])
            torch._foreach_add_(denominators, eps)
            torch._foreach_addcdiv_(params, exp_avgs, denominators, [-lr / (1 - beta1 ** t) for t in steps])

    def _state(self, p: torch.Tensor) -> dict[str, Any]:
        if p not in self.state:
            self.state[p] = {"step": torch.tensor(0.0, dtype=torch.float32),
                             "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                             "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return self.state[p]


class SGD(Optimizer):
    """SGD with momentum (Nesterov by default) and L2 weight decay added to the gradient;
    ``torch.optim.SGD``'s update, options and state (``momentum_buffer``)."""

    _moment_keys = ("momentum_buffer",)

    def __init__(self, params: ParamGroups, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 nesterov: bool = True) -> None:
        if not lr >= 0 or not momentum > 0 or not weight_decay >= 0:
            raise ValueError(f"SGD needs lr >= 0, momentum > 0 and weight_decay >= 0: got lr={lr}, "
                             f"momentum={momentum}, weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": 0, "weight_decay": weight_decay,
                                  "nesterov": nesterov, "maximize": False, "foreach": None, "differentiable": False,
                                  "fused": None})

    @torch.no_grad()
    def step(self) -> None:
        for group, params, grads in self._groups_with_grads():
            if group["weight_decay"] != 0:
                grads = list(torch._foreach_add(grads, params, alpha=group["weight_decay"]))
            momentum, dampening = group["momentum"], group["dampening"]
            buffers = []
            for p, g in zip(params, grads, strict=True):
                state = self.state.setdefault(p, {})
                if state.get("momentum_buffer") is None:  # the first step: the buffer starts as the gradient
                    state["momentum_buffer"] = torch.clone(g).detach()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(g, alpha=1 - dampening)
                buffers.append(state["momentum_buffer"])
            updates = torch._foreach_add(grads, buffers, alpha=momentum) if group["nesterov"] else buffers
            torch._foreach_add_(params, updates, alpha=-group["lr"])
