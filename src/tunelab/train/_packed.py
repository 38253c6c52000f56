"""Packed training: K models of one architecture trained together as stacked parameters.

``fit_packed`` is ``fit`` for K members at once: one ``vmap`` over the members' gradients
(``torch.func.functional_call`` on the stacked weights) and one stacked optimizer step per
batch, each member with its own plan (learning rate, weight decay, schedule, callbacks) and
its own seed. Each member sees exactly what it would see trained alone: its batches come from
its own generator (``manual_seed(seed)``, the same permutations as ``fit``), its dropout
masks from a generator holding the global RNG state right after its model was built (the
state ``fit`` would draw them from), so a packed member's curve equals its sequential twin's
up to float rounding (tested to 1e-5). A member that is pruned, stopped early or fails leaves
the stack and keeps its weights; the others go on. The data is read once: the batches are
gathered from the one training tensor.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from tunelab.data import fit_part
from tunelab.train._batches import Batches
from tunelab.train._callbacks import Callback, Prune, check_monitors
from tunelab.train._fit import History, _best_so_far, _decision, _validate, monitored
from tunelab.train._fold import fold_model, fold_target
from tunelab.train._losses import build_loss, on_target_scale
from tunelab.train._plan import Plan, Prepared
from tunelab.train._schedules import Schedule
from tunelab.train._stacked import Stack, StackedOptimizer, signature, stackable_optimizer

__all__ = ["Member", "fit_packed", "train_packed", "unpackable"]


@dataclass
class Member:
    """One model of a pack: its plan, seed, callbacks and per-epoch row sink."""

    plan: Plan
    seed: int
    callbacks: Sequence[Callback] = ()
    on_epoch: Callable[[dict[str, float]], None] | None = None
    history: History = field(default_factory=History)


def unpackable(plans: Sequence[Plan]) -> str | None:
    """Why these plans cannot train in one pack, or None when they can (the model's shapes
    are checked by :func:`fit_packed` on the built models)."""
    first = plans[0]
    for plan in plans:
        cfg = plan.spec.train
        if plan.closure or plan.l2 or cfg.l1 or plan.augment is not None or plan.bf16:
            return "l-bfgs, l1, augmentation and bf16 are trained unpacked"
        if getattr(plan.spec.model, "name", None) == "encoder":
            return "a pretrained encoder is trained unpacked"
        if getattr(plan.spec.model, "batch_norm", False):
            return "batch norm (running statistics) is trained unpacked"
        if cfg.batch_size != first.spec.train.batch_size or plan.full_batch != first.full_batch:
            return "the members' batch sizes differ"
        if plan.loss != first.loss or plan.device != first.device:
            return "the members' losses or devices differ"
        if plan.spec.data.target_scale != first.spec.data.target_scale:
            return "the members' data.target_scale differ"
    return stackable_optimizer([p.spec.train.optimizer for p in plans])


def train_packed(
    prep: Prepared, train_idx: np.ndarray, val_idx: np.ndarray | None, members: list[Member]
) -> list[nn.Module]:
    """:func:`train_fold` for every member together: preprocessing fitted on ``train_idx``
    alone, a fresh model per member built after ``torch.manual_seed(member.seed)``, then
    :func:`fit_packed`. Returns the models; each member's ``history`` is filled in."""
    stats = fit_part(prep.ds, train_idx, prep.plan.spec.data.preprocess)
    target = fold_target(prep, train_idx)
    models, dropout_states = [], []
    for m in members:
        torch.manual_seed(m.seed)
        models.append(fold_model(prep, stats, m.plan, target).to(prep.device))
        dropout_states.append(_rng_state(prep.device))  # what fit's dropout would draw from
    t_idx = torch.as_tensor(train_idx, device=prep.device)
    val = None
    if val_idx is not None:
        val = (prep.inputs(val_idx, stats), prep.y[torch.as_tensor(val_idx, device=prep.device)])
    train = (prep.inputs(train_idx, stats), prep.y[t_idx])
    fit_packed(models, train, val, members, dropout_states)
    return models


def fit_packed(
    models: list[nn.Module],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    members: list[Member],
    dropout_states: list[torch.Tensor],
) -> list[History]:
    """Train the members' models in place, together; ``dropout_states[k]``: the RNG state
    member k's dropout masks start from. Each member's ``history`` is filled in and returned."""
    from torch.func import functional_call, grad, vmap

    # --- setup: per member its generator, batches, schedule and callbacks; one stack
    sig = signature(models[0])
    if any(signature(m) != sig for m in models):
        raise ValueError("packed models must share one architecture")
    if any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in models[0].modules()):
        raise ValueError("batch norm (running statistics) is trained unpacked")
    has_val, device = val is not None, train[1].device
    plans = [m.plan for m in members]
    gens = [torch.Generator(device=device).manual_seed(m.seed) for m in members]
    batches = [Batches(train, p, g) for p, g in zip(plans, gens, strict=True)]
    epochs, steps = plans[0].spec.train.epochs, batches[0].steps
    schedules = [_schedule(p, steps, has_val) for p in plans]
    callbacks = [
        [*p.callbacks(has_val=has_val), *m.callbacks] for p, m in zip(plans, members, strict=True)
    ]
    for p, cbs in zip(plans, callbacks, strict=True):
        check_monitors(cbs, p.logged(has_val=has_val))
    drops = _Dropouts(models, dropout_states, tuple(train[0].shape[1:]), device)
    skeleton = drops.skeleton(models[0])
    stack = Stack(models)
    optimizer = StackedOptimizer([p.spec.train.optimizer for p in plans], stack.params)
    # the members share one training part, so one target scale (the loss on its scale)
    loss_fn = on_target_scale(build_loss(plans[0].loss, device=device), models[0])

    def member_loss(params, buffers, x, y, masks):
        out = functional_call(skeleton, (params, buffers | masks), (x,))
        loss = loss_fn(out, y)
        return loss, (loss, out)

    step_grads = vmap(grad(member_loss, has_aux=True))
    started, step = time.perf_counter(), 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        live = stack.live
        sums, lrs, step = _run_epoch(
            stack, optimizer, step_grads, batches, schedules, drops, plans, step
        )
        rows = _epoch_rows(sums, lrs, live, batches, plans, epoch)
        stopped = []
        for k, row in zip(live, rows, strict=True):
            member, model, cbs = members[k], models[k], callbacks[k]
            history, on_epoch = member.history, member.on_epoch or (lambda row: None)
            if "failure" in row:
                history.failure = row.pop("failure")
                history.rows.append(row | {"seconds": time.perf_counter() - t0})
                on_epoch(history.rows[-1])
                stopped.append(k)
                continue
            if has_val:
                row |= _validate(model, val, loss_fn, plans[k], history, cbs, epoch)
            row |= {"lr": lrs[live.index(k)], "seconds": time.perf_counter() - t0}
            history.rows.append(row)
            _best_so_far(history, monitored(plans[k].spec.train, has_val=has_val))
            plateau = plans[k].plateau_watch(has_val=has_val)
            schedules[k].epoch_end(row.get(plateau.key) if plateau is not None else None)
            on_epoch(row)
            decision = _decision([cb.on_epoch_end(epoch, row, model) for cb in cbs])
            if decision is not None:
                history.stop_reason, history.pruned = decision.reason, isinstance(decision, Prune)
                stopped.append(k)
        if stopped:
            _leave(stack, optimizer, stopped, members, callbacks, (has_val, started))
        if not stack.live:
            break
    _leave(stack, optimizer, list(stack.live), members, callbacks, (has_val, started))
    stack.release()
    return [m.history for m in members]


def _schedule(plan: Plan, steps: int, has_val: bool) -> Schedule:
    plateau = plan.plateau_watch(has_val=has_val)
    up = plateau is not None and plateau.maximize
    cfg = plan.spec.train
    return Schedule(
        cfg.schedule, base_lrs=[plan.lr], steps_per_epoch=steps, epochs=cfg.epochs, maximize=up
    )


def _leave(stack, optimizer, stopped, members, callbacks, when) -> None:
    """Members that stopped leave the stack (their weights stay theirs); their fit ends."""
    has_val, started = when
    for k in stopped:
        for cb in callbacks[k]:
            cb.on_fit_end(stack.models[k])
        watch = monitored(members[k].plan.spec.train, has_val=has_val)
        _best_so_far(members[k].history, watch)
        members[k].history.seconds = time.perf_counter() - started
        members[k].history.val_output = None  # the stack changed the weights' versions
    live = [k for k in stack.live if k not in stopped]
    if live:
        optimizer.keep([stack.live.index(k) for k in live])
        stack.restack(live)
    else:
        stack.live = []


def _run_epoch(stack, optimizer, step_grads, batches, schedules, drops, plans, step):
    """One epoch of stacked steps over the live members: ``(sums, lrs, step)`` with ``sums``
    a (live, 2 + metrics) tensor of summed loss, first non-finite step and metric sums."""
    live = stack.live
    device = batches[0].device
    counted = plans[0].device_metrics
    orders = [batches[k].order() for k in live]
    n, size = batches[0].n, batches[0].size
    orders = [o if o is not None else torch.arange(n, device=device) for o in orders]
    order = torch.stack(orders)  # (live, n): each member's own permutation
    X, y = batches[0].X, batches[0].y
    sums = torch.zeros(len(live), 2 + len(counted), device=device)
    sums[:, 1] = -1
    lrs = [0.0] * len(live)
    for s in range(batches[0].steps):
        end = n if s == batches[0].steps - 1 else (s + 1) * size
        idx = order[:, s * size : end]
        xb, yb = X[idx], y[idx]
        lrs = [plans[k].lr * schedules[k].factor(step) for k in live]
        grads, (loss, out) = step_grads(stack.params, stack.buffers, xb, yb, drops.masks(live, xb))
        _clip(grads, [plans[k].spec.train.grad_clip for k in live])
        optimizer.step(stack.params, grads, torch.tensor(lrs, device=device))
        sums[:, 0] += loss.detach() * yb.shape[1]
        bad = (sums[:, 1] < 0) & ~torch.isfinite(loss)
        sums[:, 1] = torch.where(bad, float(s), sums[:, 1])
        if counted:
            for row, k in enumerate(live):
                pred = plans[k].predictions(out[row], yb[row])
                sums[row, 2:] += torch.stack([m.batch(pred, yb[row]).float() for m in counted])
        step += 1
    return sums, lrs, step


def _epoch_rows(sums, lrs, live, batches, plans, epoch) -> list[dict]:
    """Each live member's training row of this epoch (``failure`` set for a non-finite loss)."""
    table = sums.tolist()  # sync point
    rows = []
    for row_sums, lr, k in zip(table, lrs, live, strict=True):
        loss_total, first_bad, *totals = row_sums
        row: dict = {"epoch": epoch, "train_loss": loss_total / batches[k].n}
        if not math.isfinite(row["train_loss"]):
            failure = f"non-finite loss at epoch {epoch}, step {int(first_bad) + 1}"
            rows.append(row | {"lr": lr, "failure": failure})
            continue
        counted = zip(plans[k].device_metrics, totals, strict=True)
        rows.append(row | {f"train_{m.name}": m.finish(t, batches[k].count) for m, t in counted})
    return rows


def _clip(grads: dict[str, torch.Tensor], clips: list[float | None]) -> None:
    """``clip_grad_norm_`` per member: each row's gradients scaled to its norm limit."""
    if not any(clips):
        return
    flat = [g.reshape(g.shape[0], -1) for g in grads.values()]
    norms = torch.stack([f.norm(dim=1) for f in flat], dim=1).norm(dim=1)
    limit = torch.tensor([c or math.inf for c in clips], device=norms.device)
    coef = torch.clamp(limit / (norms + 1e-6), max=1.0)
    for g in grads.values():
        g.mul_(coef.reshape((-1,) + (1,) * (g.ndim - 1)))


class _MaskDropout(nn.Module):
    """Dropout by a given mask (drawn outside the vmap, per member, from its own stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mask", torch.ones(1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask


class _Dropouts:
    """Each member's dropout masks, drawn as ``nn.Dropout`` draws them in training."""

    def __init__(self, models: list[nn.Module], states: list[torch.Tensor], in_shape, device):
        self.names = [n for n, m in models[0].named_modules() if isinstance(m, nn.Dropout)]
        self.shapes = _dropout_inputs(models[0], self.names, in_shape) if self.names else {}
        self.rates = [
            [dict(m.named_modules())[n].p for n in self.names] for m in models
        ]  # per member, per dropout layer
        self.gens = []
        for state in states:
            gen = torch.Generator(device=device)
            gen.set_state(state)
            self.gens.append(gen)
        self.device = device

    def skeleton(self, model: nn.Module) -> nn.Module:
        """A copy of ``model`` whose dropout layers take their mask as a buffer."""
        import copy

        skeleton = copy.deepcopy(model)
        for name in self.names:
            parent, _, attr = name.rpartition(".")
            owner = skeleton.get_submodule(parent) if parent else skeleton
            setattr(owner, attr, _MaskDropout())
        return skeleton.train()

    def masks(self, live: list[int], xb: torch.Tensor) -> dict[str, torch.Tensor]:
        """This step's masks, ``(live, batch, *features)`` per dropout layer, in the order
        the forward pass calls the layers (the order each member's stream is drawn in)."""
        batch = xb.shape[1]
        per_layer: dict[str, list[torch.Tensor]] = {n: [] for n in self.names}
        for k in live:
            for j, name in enumerate(self.names):
                p = self.rates[k][j]
                noise = torch.empty((batch, *self.shapes[name]), device=self.device)
                if p > 0:
                    noise.bernoulli_(1 - p, generator=self.gens[k]).div_(1 - p)
                else:
                    noise.fill_(1.0)
                per_layer[name].append(noise)
        return {f"{n}.mask": torch.stack(v) for n, v in per_layer.items()}


def _dropout_inputs(model: nn.Module, names: list[str], in_shape) -> dict[str, tuple[int, ...]]:
    """The feature shape of each dropout layer's input, from one probe pass (which must call
    each layer once, in the order the layers are registered)."""
    calls: list[tuple[str, tuple[int, ...]]] = []
    hooks = [
        model.get_submodule(n).register_forward_pre_hook(
            lambda mod, args, n=n: calls.append((n, tuple(args[0].shape[1:])))
        )
        for n in names
    ]
    try:
        first = next(iter(model.parameters()))
        with torch.no_grad():
            model.eval()(torch.zeros((2, *in_shape), device=first.device))
    finally:
        for h in hooks:
            h.remove()
        model.train()
    if [c[0] for c in calls] != names:
        raise ValueError("packed dropout needs each dropout layer called once, in order")
    return dict(calls)


def _rng_state(device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        return torch.cuda.get_rng_state(device)
    return torch.get_rng_state()
