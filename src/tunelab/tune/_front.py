"""Multi-objective studies (``tune.objectives``): the objectives, each trial's measured costs,
our early stopping of dominated trials, and the rule that picks the front trial to refit.

Optuna's pruners are single-objective (``Trial.report`` and ``should_prune`` raise in a
multi-objective study), so a trial here is stopped by :class:`FrontStop`: after each epoch its
objectives at that step (the val metrics logged at the epoch, and its costs, measured once on
its model after the first epoch) are compared with every completed trial's at the same step
(from the per-step values each completed trial stored in its ``result`` attribute). The trial
stops once one of them dominates it with the margin: at least ``margin`` better on every val
objective and no worse on every cost. Being dominated by a completed trial is being dominated
by the current front (a trial that dominates it is on the front or is dominated by one that
is), so the rule reads "dominated by the front, with a margin, at the same epoch". The decision
and its reason are stored in the trial (user attribute ``stopped``, and the trial's reason).
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from tunelab.errors import SpecError
from tunelab.evaluate import get_metric, greater_is_better
from tunelab.spec import COSTS, parse_pick
from tunelab.train import Callback, Prune

__all__ = [
    "Objective",
    "val_metric",
    "objectives_of",
    "measure_costs",
    "dominates",
    "FrontStop",
    "pick_trial",
    "STOPPED_ATTR",
]

STOPPED_ATTR = "stopped"  # the trial's user attribute holding the stop decision
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Objective:
    name: str  # "val.accuracy", "latency_ms"
    maximize: bool

    @property
    def key(self) -> str | None:
        """The history's key of a val objective (``val_accuracy``); None for a cost."""
        return None if self.name in COSTS else "val_" + self.name.removeprefix("val.")

    @property
    def metric(self) -> str | None:
        return None if self.name in COSTS else self.name.removeprefix("val.")


def val_metric(text: str, task: str, *, where: str = "tune.objective") -> str:
    """The metric of ``val.<metric>`` / ``val_loss``, checked against the task."""
    side, dot, metric = text.partition(".")  # val.f1_macro
    if not dot:
        side, _, metric = text.partition("_")  # val_loss
    if side == "test":
        raise SpecError(f"{where} {text!r}: the test part is sealed; tune on val.<metric>")
    if side != "val" or not metric:
        raise SpecError(f"{where}: expected val.<metric> or val.loss; got {text!r}")
    if metric != "loss" and get_metric(metric).task != task:
        raise SpecError(
            f"{where}: {metric} is a {get_metric(metric).task} metric, but this is a {task} task"
        )
    return metric


def objectives_of(spec, task: str) -> list[Objective]:
    """The study's objectives with their directions (val metrics by ``greater_is_better``,
    costs minimised); empty for a single-objective study."""
    out = []
    for text in spec.tune.objectives or []:
        if text in COSTS:
            out.append(Objective(text, maximize=False))
            continue
        metric = val_metric(text, task, where="tune.objectives")
        out.append(
            Objective(f"val.{metric}", maximize=metric != "loss" and greater_is_better(metric))
        )
    return out


def measure_costs(
    model: torch.nn.Module, x: torch.Tensor, names: Sequence[str], *, measure, folder: Path
) -> dict[str, float]:
    """The costs among ``names`` of a float32 CPU copy of ``model`` in eval mode: latency at
    batch 1 (threads fixed, median of ``measure.repeats``), weights on disk in MB (safetensors,
    written into ``folder`` and removed), non-zero parameters."""
    from tunelab.compress import latency_ms, nonzero_parameters, size_bytes, threads
    from tunelab.runs import save_weights

    model = copy.deepcopy(model).to("cpu", torch.float32).eval()
    x = x[:1].to("cpu", torch.float32)
    costs: dict[str, float] = {}
    if "latency_ms" in names:
        with threads(measure.threads):
            costs["latency_ms"] = latency_ms(model, x, batch=1, repeats=measure.repeats)
    if "size_mb" in names:
        path = folder / "cost_weights.safetensors"
        save_weights(path, model.state_dict())
        costs["size_mb"] = size_bytes([path]) / 1e6
        path.unlink()
    if "params" in names:
        costs["params"] = float(nonzero_parameters(model))
    return costs


def dominates(
    a: Sequence[float], b: Sequence[float], objectives: Sequence[Objective], *, margin: float = 0.0
) -> bool:
    """Whether ``a`` dominates ``b``: on every val objective at least ``margin`` better, on
    every cost no worse, and better somewhere (``margin`` 0: plain Pareto dominance)."""
    better = False
    for x, y, obj in zip(a, b, objectives, strict=True):
        gain = (x - y) if obj.maximize else (y - x)
        need = margin if obj.key is not None else 0.0
        if gain < need:
            return False
        better = better or gain > 0
    return better


def _vector(stored: dict, step: int, objectives: Sequence[Objective]) -> list[float] | None:
    """A completed trial's objectives at ``step``, from its ``result`` attribute."""
    vals = (stored.get("steps") or {}).get(str(step))
    costs = stored.get("costs") or {}
    if vals is None or any(o.key is None and o.name not in costs for o in objectives):
        return None
    it = iter(vals)
    return [float(next(it)) if o.key is not None else float(costs[o.name]) for o in objectives]


def _describe(objectives, mine, theirs) -> str:
    return ", ".join(
        f"{o.name} {m:.4g} vs {t:.4g}" for o, m, t in zip(objectives, mine, theirs, strict=True)
    )


class FrontStop(Callback):
    """After each epoch: measure the costs (first epoch), keep the val objectives at this step
    (``steps``: what the trial stores for later trials), stop when dominated (see the module)."""

    def __init__(self, trial: optuna.Trial, objectives, rule, *, offset: int, measure_fn, costs):
        self.trial, self.objectives, self.rule = trial, list(objectives), rule
        self.offset, self.measure_fn = offset, measure_fn
        self.costs: dict[str, float] = costs  # shared by the folds of one trial
        self.steps: dict[str, list[float]] = {}

    def on_epoch_end(self, epoch, logs, model):
        if not self.costs and any(o.key is None for o in self.objectives):
            self.costs.update(self.measure_fn(model))
        vals = [logs.get(o.key) for o in self.objectives if o.key is not None]
        if any(v is None or not math.isfinite(v) for v in vals):
            return None
        step = self.offset + epoch
        self.steps[str(step)] = [float(v) for v in vals]
        if self.rule is None or step <= self.rule.n_warmup_steps:
            return None
        it = iter(vals)
        mine = [
            float(next(it)) if o.key is not None else self.costs[o.name] for o in self.objectives
        ]
        done = self.trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if len(done) < self.rule.n_startup_trials:
            return None
        for other in done:
            theirs = _vector(other.user_attrs.get("result") or {}, step, self.objectives)
            if theirs is not None and dominates(
                theirs, mine, self.objectives, margin=self.rule.margin
            ):
                reason = (
                    f"dominated at step {step} by trial {other.number} (margin "
                    f"{self.rule.margin:g}): {_describe(self.objectives, mine, theirs)}"
                )
                self.trial.set_user_attr(
                    STOPPED_ATTR,
                    {"step": step, "by": other.number, "margin": self.rule.margin,
                     "values": mine, "by_values": theirs, "reason": reason},
                )  # fmt: skip
                return Prune(reason)
        return None


def pick_trial(
    front: Sequence[FrozenTrial], objectives: Sequence[Objective], pick: Sequence[str] | None
) -> tuple[FrozenTrial | None, str]:
    """The front trial to refit and test, and the rule in words.

    The rule: among the front trials that meet every constraint of ``tune.pick``
    (``latency_ms<=2``), the best on the objective ``tune.pick`` names without a bound (the
    first objective by default); ties go to the lower trial number. None when no front trial
    meets the constraints.
    """
    names = [o.name for o in objectives]
    rules = [parse_pick(text, names) for text in pick or []]
    rank = next((name for name, op, _ in rules if op is None), names[0])
    bounds = [(name, op, bound) for name, op, bound in rules if op is not None]
    ok = [
        t
        for t in front
        if all(_OPS[op](t.values[names.index(name)], bound) for name, op, bound in bounds)
    ]
    i = names.index(rank)
    words = f"the best {rank} on the front" + (
        " among " + ", ".join(f"{n}{op}{b:g}" for n, op, b in bounds) if bounds else ""
    )
    if not ok:
        return None, words
    sign = -1.0 if objectives[i].maximize else 1.0
    return min(ok, key=lambda t: (sign * t.values[i], t.number)), words
