"""Stacked models and their optimizers: K models of one architecture as one set of tensors.

``Stack`` holds every parameter and buffer of K models stacked along a new first dimension;
each model's own parameters are views of their row (``p.data = stacked[k]``), so a member is
still an ``nn.Module`` whose weights are always current (validation, callbacks and
``restore_best`` use it as they would use a model trained alone). ``StackedOptimizer`` is
torch's Adam, AdamW, SGD or GD written on the stacked tensors, each member with its own
learning rate and weight decay; the update is the same arithmetic as ``torch.optim``'s.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

__all__ = ["Stack", "StackedOptimizer", "stackable_optimizer", "signature"]

# the optimizer options that may differ between the members of one pack
PER_MEMBER = ("lr", "weight_decay")


def signature(model: nn.Module) -> tuple:
    """What must be equal for models to be stacked: every module's kind and every
    parameter's and buffer's name and shape (dropout rates may differ)."""
    modules = tuple((name, type(m).__name__) for name, m in model.named_modules())
    tensors = tuple(
        (n, tuple(t.shape)) for n, t in (*model.named_parameters(), *model.named_buffers())
    )
    return modules, tensors


class Stack:
    """The stacked parameters and buffers of the live members (rows in member order)."""

    def __init__(self, models: list[nn.Module]) -> None:
        self.models = models
        self.live = list(range(len(models)))
        self.params: dict[str, torch.Tensor] = {}
        self.buffers: dict[str, torch.Tensor] = {}
        self.restack(self.live)

    def restack(self, live: list[int]) -> None:
        """Stack the members in ``live`` again (a member that stopped keeps its weights)."""
        self.live = list(live)
        members = [self.models[k] for k in self.live]
        names = [n for n, _ in members[0].named_parameters()]
        for name in names:
            own = [dict(m.named_parameters())[name] for m in members]
            self.params[name] = torch.stack([p.detach() for p in own])
            for row, p in enumerate(own):
                p.data = self.params[name][row]  # the member's weights are the stack's row
        self.buffers = {
            n: torch.stack([dict(m.named_buffers())[n] for m in members])
            for n, _ in members[0].named_buffers()
        }

    def release(self) -> None:
        """Give every member its own storage (the stack is no longer trained)."""
        for model in self.models:
            for p in model.parameters():
                p.data = p.data.clone()


def stackable_optimizer(specs: list[Any]) -> str | None:
    """Why these members' optimizers cannot be stacked, or None when they can."""
    names = {s.name for s in specs}
    if len(names) > 1 or next(iter(names)) not in _STEPS:
        return f"optimizers {sorted(names)}: packed training stacks adam, adamw, sgd and gd"
    shared = [s.model_dump(exclude={"name", *PER_MEMBER}) for s in specs]
    if any(d != shared[0] for d in shared):
        return "the members' optimizers differ in more than lr and weight_decay"
    if shared[0].get("amsgrad"):
        return "amsgrad is not stacked"
    return None


class StackedOptimizer:
    """One optimizer over the stacked parameters; ``step(grads, lrs)`` with one lr per row."""

    def __init__(self, specs: list[Any], params: dict[str, torch.Tensor]) -> None:
        self.kind = specs[0].name
        self.options = specs[0].model_dump(exclude={"name", *PER_MEMBER})
        device = next(iter(params.values())).device
        self.wd = torch.tensor([float(s.weight_decay) for s in specs], device=device)
        self.state: dict[str, dict[str, torch.Tensor]] = {n: {} for n in params}
        self.steps = 0

    def keep(self, rows: list[int]) -> None:
        """Keep the state of these rows only (members that stopped leave the stack)."""
        index = torch.tensor(rows, device=self.wd.device)
        self.wd = self.wd[index]
        for state in self.state.values():
            for key in state:
                state[key] = state[key][index]

    @torch.no_grad()
    def step(
        self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], lrs: torch.Tensor
    ) -> None:
        self.steps += 1
        for name, p in params.items():
            shape = (-1,) + (1,) * (p.ndim - 1)
            lr, wd = lrs.reshape(shape), self.wd.reshape(shape)
            _STEPS[self.kind](self, p, grads[name], self.state[name], lr, wd)


def _adam(opt: StackedOptimizer, p, g, state, lr, wd, *, decoupled: bool = False) -> None:
    """``torch.optim.Adam`` (L2 in the gradient) or ``AdamW`` (decoupled decay)."""
    beta1, beta2 = opt.options["betas"]
    eps = opt.options["eps"]
    if decoupled:
        p.mul_(1 - lr * wd)
    else:
        g = g + wd * p
    if not state:
        state["exp_avg"] = torch.zeros_like(p)
        state["exp_avg_sq"] = torch.zeros_like(p)
    m, v = state["exp_avg"], state["exp_avg_sq"]
    m.lerp_(g, 1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    correction1 = 1 - beta1**opt.steps
    correction2_sqrt = math.sqrt(1 - beta2**opt.steps)
    denom = (v.sqrt() / correction2_sqrt).add_(eps)
    p.sub_((lr / correction1) * (m / denom))


def _adamw(opt, p, g, state, lr, wd) -> None:
    _adam(opt, p, g, state, lr, wd, decoupled=True)


def _sgd(opt: StackedOptimizer, p, g, state, lr, wd) -> None:
    """``torch.optim.SGD`` with (Nesterov) momentum and dampening."""
    momentum = opt.options.get("momentum", 0.0)
    g = g + wd * p
    if momentum:
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = g.clone()
        else:
            buf = state["momentum_buffer"]
            buf.mul_(momentum).add_(g, alpha=1 - opt.options.get("dampening", 0.0))
        buf = state["momentum_buffer"]
        g = g + momentum * buf if opt.options.get("nesterov") else buf
    p.sub_(lr * g)


_STEPS = {"adam": _adam, "adamw": _adamw, "sgd": _sgd, "gd": _sgd}
