"""Training checkpoints: everything ``fit`` needs to continue exactly after a finished epoch.

A checkpoint is one file, ``checkpoint.safetensors``. Every tensor (model weights, optimizer
state, early stopping's best weights, the generator and torch RNG states) is a safetensors
tensor; everything else (epoch, step, history rows, schedule and callback state, the NumPy and
Python RNG states) is JSON in the file's header metadata, where a tensor appears as
``{"$tensor": name}``. Nothing is pickled and nothing is unpickled: a pickle under that name is
refused.

Writes are atomic (a temporary ``.checkpoint.safetensors.*.tmp`` in the same folder, fsync,
``os.replace``): a process killed at any moment leaves the previous complete checkpoint or the
new one under the final name, never a part of one. Loading reads only the final name, so a
temporary left by a killed writer is never taken for a checkpoint; :func:`discard_temporaries`
removes such leftovers (a run does so when it starts or resumes).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tunelab._disk import atomic_write
from tunelab.errors import RunError

__all__ = [
    "CHECKPOINT_FILE",
    "Checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "discard_temporaries",
]

CHECKPOINT_FILE = "checkpoint.safetensors"
_KEY = "tunelab_checkpoint"  # the metadata entry holding the JSON part
_VERSION = 1


@dataclass
class Checkpoint:
    """The state of a training after ``epoch`` finished epochs.

    ``capture`` holds references to the live tensors (no copies): save the checkpoint before
    training goes on.
    """

    epoch: int  # finished epochs
    step: int  # optimizer steps taken
    best: float | None  # best monitored value so far, and its epoch
    best_epoch: int | None
    rows: list[dict[str, Any]]  # the history rows of the finished epochs
    seconds: float  # training time so far
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    callbacks: list[dict[str, Any] | None]  # one per callback; None where it keeps no state
    rng: dict[str, Any]  # generator, torch, cuda (when initialised), numpy, python
    device: str  # the device type: generator states differ between CPU and CUDA
    extra: dict[str, Any] = field(default_factory=dict)  # the caller's own JSON values

    @classmethod
    def capture(
        cls,
        *,
        epoch: int,
        step: int,
        best: float | None,
        history: Any,
        seconds: float,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        generator: torch.Generator,
        callbacks: Any = (),
    ) -> Checkpoint:
        """The state ``fit`` holds at the end of an epoch (``history`` is its ``History``)."""
        return cls(
            epoch=epoch,
            step=step,
            best=best,
            best_epoch=history.best_epoch,
            rows=list(history.rows),
            seconds=seconds,
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            schedule=schedule.state_dict(),
            callbacks=[cb.state_dict() if hasattr(cb, "state_dict") else None for cb in callbacks],
            rng=_rng_state(generator),
            device=generator.device.type,
        )

    def restore(
        self,
        *,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        generator: torch.Generator,
        callbacks: Any = (),
    ) -> None:
        """Put the state back: weights, optimizer, schedule, callbacks and every RNG.

        The RNG states come last, so call this just before the first resumed epoch.
        """
        if generator.device.type != self.device:
            raise RunError(
                f"the checkpoint was written while training on {self.device}, this training "
                f"is on {generator.device.type}; resume it on a machine with the same kind "
                "of device"
            )
        try:
            model.load_state_dict(self.model)
            optimizer.load_state_dict(self.optimizer)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise RunError(
                "the checkpoint does not fit this model and optimizer: "
                f"{str(exc).strip().splitlines()[0]}"
            ) from None
        schedule.load_state_dict(self.schedule)
        if len(self.callbacks) != len(callbacks):
            raise RunError(
                f"the checkpoint holds the state of {len(self.callbacks)} callback(s), this "
                f"training has {len(callbacks)}; resume with the callbacks it started with"
            )
        for cb, state in zip(callbacks, self.callbacks, strict=True):
            if state is not None:
                cb.load_state_dict(state)
        _set_rng_state(self.rng, generator)


def save_checkpoint(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}  # named by where they sit: "optimizer/state/0/d"
    seen: set[int] = set()
    tree = {
        f.name: _encode(getattr(checkpoint, f.name), f.name, tensors, seen)
        for f in fields(checkpoint)
    }
    meta = {"format": "pt", _KEY: json.dumps({"version": _VERSION, "state": tree})}
    data = save(tensors, metadata=meta)
    with atomic_write(Path(path), "wb") as fh:
        fh.write(data)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint; a missing, damaged or non-safetensors file is a :class:`RunError`.

    Tensors come back on the CPU (``restore`` moves them where they belong).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint not found: {path}")
    try:
        with safe_open(path, framework="pt") as fh:
            meta = fh.metadata() or {}
            names = fh.keys()  # a safetensors reader is not iterable
            # copies in fresh, aligned memory: CPU kernels (a dot product) sum in another
            # order on data at an odd address, and resuming would no longer be exact
            tensors = {name: fh.get_tensor(name).clone() for name in names}
    except (SafetensorError, OSError, ValueError) as exc:
        raise RunError(
            f"{path} is not a valid safetensors checkpoint ({exc}); tunelab never unpickles "
            "checkpoints. Delete it and start the run again"
        ) from None
    if _KEY not in meta:
        raise RunError(f"{path} is a safetensors file but not a tunelab checkpoint")
    try:
        doc = json.loads(meta[_KEY])
        if doc["version"] > _VERSION:
            raise RunError(
                f"{path} was written by a newer tunelab (checkpoint version {doc['version']}, "
                f"this one reads up to {_VERSION}); upgrade tunelab to resume it"
            )
        return Checkpoint(**_decode(doc["state"], tensors))
    except (ValueError, KeyError, TypeError) as exc:
        raise RunError(
            f"{path} is a damaged checkpoint ({type(exc).__name__}: {exc}); delete it and "
            "start the run again"
        ) from None


def discard_temporaries(path: str | Path) -> None:
    """Remove the temporary files a killed writer of ``path`` left in its folder."""
    path = Path(path)
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        tmp.unlink(missing_ok=True)


# --- RNG states: the fit generator, torch (CPU and CUDA), NumPy and Python's random


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    state = {
        "generator": generator.get_state(),
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(legacy=False),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


# --- the JSON part: nested values with tensors replaced by references into the tensor map


def _encode(value: Any, where: str, tensors: dict[str, torch.Tensor], seen: set[int]) -> Any:
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen and t.numel():  # safetensors refuses tensors that share memory
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        name = where or "tensor"
        while name in tensors:  # keep names unique
            name += "~"
        tensors[name] = t
        return {"$tensor": name}
    if isinstance(value, np.ndarray):
        return {"$ndarray": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _encode(v, f"{where}/{k}", tensors, seen) for k, v in value.items()}
        return {
            "$items": [
                [
                    _encode(k, f"{where}/{i}.key", tensors, seen),
                    _encode(v, f"{where}/{i}", tensors, seen),
                ]
                for i, (k, v) in enumerate(value.items())
            ]
        }
    if isinstance(value, (list, tuple)):
        items = [_encode(v, f"{where}/{i}", tensors, seen) for i, v in enumerate(value)]
        return {"$tuple": items} if isinstance(value, tuple) else items
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"cannot store a value of type {type(value).__name__} in a checkpoint (at {where or '/'}); a state "
        "holds tensors, arrays, numbers, strings, lists, tuples and dicts"
    )


def _decode(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "$tensor" in value:
        return tensors[value["$tensor"]]
    if "$ndarray" in value:
        return np.asarray(value["$ndarray"], dtype=value["dtype"])
    if "$tuple" in value:
        return tuple(_decode(v, tensors) for v in value["$tuple"])
    if "$items" in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["$items"]}
    return {k: _decode(v, tensors) for k, v in value.items()}
