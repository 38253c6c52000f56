"""Training checkpoints: every piece of state round-trips, resuming `fit` is exact, pickles are
refused, and SIGKILL during a save never leaves a partial file under the final name."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import tunelab
from tunelab.errors import RunError
from tunelab.runs import save_weights
from tunelab.train import (
    CHECKPOINT_FILE,
    Callback,
    Checkpoint,
    DataShape,
    EarlyStopping,
    History,
    Schedule,
    build_optimizer,
    discard_temporaries,
    fit,
    load_checkpoint,
    resolve,
    save_checkpoint,
)


def train_spec(**train):
    return tunelab.load_spec({"data": "iris", "model": "linear", "train": train}).train


def images(n=96, seed=0):
    """Three classes of noisy 1x6x6 images (a bright row per class)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    X = 0.3 * torch.randn(n, 1, 6, 6, generator=g)
    X[torch.arange(n), 0, y * 2] += 1.0
    return X, y


def net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(36, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3)
    )


def noise(x, generator):
    """Augmentation that draws from fit's generator (so its state matters)."""
    return x + 0.1 * torch.randn(x.shape, generator=generator)


class Interrupted(Exception):
    pass


def stopper():
    return EarlyStopping(monitor="val_loss", greater_is_better=False, patience=50)


def run(cfg, *, epochs=None, callbacks=(), checkpoint=None, resume=None):
    """fit() on the image problem with dropout, augmentation and the given callbacks."""
    model = net()
    spec = tunelab.load_spec({"data": "iris", "model": "linear"})
    cfg = cfg.model_copy(update={"loss": train_spec(loss="cross_entropy").loss})
    spec = spec.model_copy(update={"train": cfg.model_copy(update={"metrics": ["accuracy"]})})
    plan = resolve(spec, DataShape.of(*images(), task="classification"), device="cpu")
    history = fit(
        model,
        images(),
        images(48, seed=1),
        dataclasses.replace(plan, augment=noise),
        seed=7,
        callbacks=callbacks,
        epochs=epochs,
        checkpoint=checkpoint,
        resume=resume,
    )
    return model, history


def without_seconds(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


def same_tensors(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def same_tree(a, b):
    """Nested equality where tensors compare with torch.equal (dtype included)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same_tree(x, y) for x, y in zip(a, b, strict=True))
        )
    return a == b or (isinstance(a, float) and np.isnan(a) and np.isnan(b))


OPTIMIZERS = {
    "adam": {"name": "adam", "lr": 0.01},
    "sgd": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
    "rmsprop": {"name": "rmsprop", "lr": 0.01, "centered": True, "momentum": 0.5},
    "lbfgs": {"name": "lbfgs", "lr": 0.5, "max_iter": 4, "history_size": 5},
}


# ---------------------------------------------------------------------------------------------
# every piece of state survives the file


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_piece_of_state_round_trips(tmp_path, optimizer):
    cfg = train_spec(
        epochs=3,
        batch_size=16,
        optimizer=OPTIMIZERS[optimizer],
        schedule={"name": "plateau", "patience": 0, "threshold": 0.5},
    )
    epochs = []

    def write_and_compare(original):  # before training goes on and changes the live tensors
        save_checkpoint(tmp_path / CHECKPOINT_FILE, original)
        loaded = load_checkpoint(tmp_path / CHECKPOINT_FILE)
        epochs.append(loaded.epoch)
        assert (loaded.epoch, loaded.step, loaded.device) == (original.epoch, original.step, "cpu")
        assert loaded.step == loaded.epoch * (1 if optimizer == "lbfgs" else 6)
        assert (loaded.best, loaded.best_epoch) == (original.best, original.best_epoch)
        assert loaded.rows == original.rows and len(loaded.rows) == loaded.epoch
        assert loaded.seconds == original.seconds > 0
        # the model's, the optimizer's (int keys, tuples, lists of tensors for L-BFGS) ...
        assert same_tensors(loaded.model, original.model)
        assert same_tree(loaded.optimizer, original.optimizer)
        # ... the plateau's, early stopping's with its best weights
        assert loaded.schedule == original.schedule
        assert same_tree(loaded.callbacks, original.callbacks)
        assert loaded.callbacks[0]["best_epoch"] == loaded.best_epoch
        # every RNG: fit's generator, torch's, NumPy's and Python's (CUDA's where initialised)
        assert set(loaded.rng) >= {"generator", "torch", "numpy", "python"}
        assert same_tree(loaded.rng, original.rng)
        saved.append(loaded)

    saved: list[Checkpoint] = []
    random.seed(1)
    np.random.seed(2)
    run(cfg, callbacks=[stopper()], checkpoint=write_and_compare)
    assert epochs == [1, 2, 3]
    assert saved[-1].schedule["plateau"] < 1.0  # the plateau cut the rate: its state matters
    assert saved[-1].callbacks[0]["best_state"] is not None


def test_restore_puts_every_rng_back(tmp_path):
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    gen = torch.Generator().manual_seed(9)
    model, cfg = net(), train_spec(optimizer={"name": "adam"})
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), device=torch.device("cpu"))
    schedule = Schedule(cfg.schedule, base_lrs=[0.001], steps_per_epoch=1, epochs=1)
    state = Checkpoint.capture(
        epoch=1,
        step=0,
        best=None,
        history=History(),
        seconds=0.0,
        model=model,
        optimizer=optimizer,
        schedule=schedule,
        generator=gen,
    )
    save_checkpoint(tmp_path / "c.safetensors", state)

    def draws():
        return (
            torch.rand(3, generator=gen).tolist(),
            torch.rand(3).tolist(),
            np.random.rand(3).tolist(),
            np.random.normal(),
            [random.random() for _ in range(3)],
            random.gauss(0, 1),
        )

    first = draws()
    assert draws() != first  # the draws moved every RNG on
    load_checkpoint(tmp_path / "c.safetensors").restore(
        model=model, optimizer=optimizer, schedule=schedule, generator=gen
    )
    assert draws() == first


def test_an_unsupported_value_is_named(tmp_path):
    class Weird(Callback):
        def state_dict(self):
            return {"handle": object()}

    cfg = train_spec(epochs=1, batch_size=32)
    with pytest.raises(TypeError, match="cannot store a value of type object.*callbacks/0/handle"):
        run(cfg, callbacks=[Weird()], checkpoint=lambda s: save_checkpoint(tmp_path / "c", s))


# ---------------------------------------------------------------------------------------------
# fit continues exactly where the checkpoint left off


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("schedule", ["plateau", "onecycle"])
def test_fit_resumed_from_a_checkpoint_ends_like_an_uninterrupted_fit(
    tmp_path, optimizer, schedule
):
    sched = {"name": "plateau", "patience": 0, "threshold": 0.2} if schedule == "plateau" else {}
    cfg = train_spec(
        epochs=5,
        batch_size=16,
        optimizer=OPTIMIZERS[optimizer],
        schedule=sched or {"name": "onecycle"},
    )
    whole, whole_history = run(cfg, callbacks=[stopper()])
    path = tmp_path / CHECKPOINT_FILE

    def interrupt_after_2(state):
        save_checkpoint(path, state)
        if state.epoch == 2:
            torch.rand(5)  # the dying process moves the RNGs on; the resume must not care
            raise Interrupted

    with pytest.raises(Interrupted):
        run(cfg, callbacks=[stopper()], checkpoint=interrupt_after_2)
    resumed, history = run(cfg, callbacks=[stopper()], resume=load_checkpoint(path))
    assert same_tensors(resumed.state_dict(), whole.state_dict())
    assert without_seconds(history.rows) == without_seconds(whole_history.rows)
    assert history.best_epoch == whole_history.best_epoch


def test_a_stop_decision_is_not_checkpointed(tmp_path):
    """The epoch that ends training is trained again on resume, and decides the same."""
    cfg = train_spec(epochs=20, batch_size=16, optimizer={"name": "sgd", "lr": 1e-7})
    epochs = []
    early = EarlyStopping(monitor="val_accuracy", greater_is_better=True, patience=2)
    _, history = run(cfg, callbacks=[early], checkpoint=lambda s: epochs.append(s.epoch))
    assert history.stop_reason and len(history.rows) < 20
    assert epochs == list(range(1, len(history.rows)))


# ---------------------------------------------------------------------------------------------
# what is not a checkpoint is refused, and never unpickled


class Payload:
    """Unpickling this creates a file: proof that nothing was unpickled if it does not exist."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_named_checkpoint_is_refused_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / CHECKPOINT_FILE
    path.write_bytes(pickle.dumps({"model": Payload(marker), "epoch": 3}))
    with pytest.raises(RunError, match=rf"{path} is not a valid safetensors checkpoint.*never"):
        load_checkpoint(path)
    assert not marker.exists()
    # torch.save's format (a zip of pickles) is refused the same way
    torch.save({"epoch": 3}, path)
    with pytest.raises(RunError, match="not a valid safetensors checkpoint"):
        load_checkpoint(path)


def test_a_missing_damaged_or_foreign_file_is_a_run_error(tmp_path):
    path = tmp_path / CHECKPOINT_FILE
    with pytest.raises(RunError, match=f"checkpoint not found: {path}"):
        load_checkpoint(path)
    # a model file is safetensors, but not a checkpoint
    save_weights(path, {"w": torch.ones(2)})
    with pytest.raises(RunError, match="a safetensors file but not a tunelab checkpoint"):
        load_checkpoint(path)
    run(train_spec(epochs=1, batch_size=32), checkpoint=lambda s: save_checkpoint(path, s))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # cut short
    with pytest.raises(RunError, match=f"{path} is not a valid safetensors checkpoint"):
        load_checkpoint(path)
    # valid safetensors whose JSON part lacks a field
    tensors = {"w": torch.ones(1)}
    save_file(tensors, path, metadata={"tunelab_checkpoint": json.dumps({"version": 1})})
    with pytest.raises(RunError, match=f"{path} is a damaged checkpoint"):
        load_checkpoint(path)
    save_file(tensors, path, metadata={"tunelab_checkpoint": json.dumps({"version": 99})})
    with pytest.raises(RunError, match="written by a newer tunelab"):
        load_checkpoint(path)


def test_a_checkpoint_for_another_model_or_device_is_refused(tmp_path):
    path = tmp_path / CHECKPOINT_FILE
    run(train_spec(epochs=1, batch_size=32), checkpoint=lambda s: save_checkpoint(path, s))
    state = load_checkpoint(path)
    other = nn.Linear(36, 3)
    cfg = train_spec(optimizer={"name": "adam"})
    with pytest.raises(RunError, match="does not fit this model and optimizer"):
        state.restore(
            model=other,
            optimizer=build_optimizer(
                cfg.optimizer, other.parameters(), device=torch.device("cpu")
            ),
            schedule=Schedule(cfg.schedule, base_lrs=[0.001], steps_per_epoch=1, epochs=1),
            generator=torch.Generator(),
        )
    state.device = "cuda"
    with pytest.raises(RunError, match="written while training on cuda"):
        run(train_spec(epochs=2, batch_size=32), resume=state)
    state.device = "cpu"
    with pytest.raises(RunError, match="state of 0 callback"):
        run(train_spec(epochs=2, batch_size=32), callbacks=[stopper()], resume=state)


def test_discard_temporaries_removes_only_a_killed_writers_leftovers(tmp_path):
    path = tmp_path / CHECKPOINT_FILE
    keep = [tmp_path / "model.safetensors", tmp_path / ".model.safetensors.x1.tmp", path]
    for p in keep:
        p.write_bytes(b"x")
    leftovers = [tmp_path / f".{CHECKPOINT_FILE}.abc{i}.tmp" for i in range(3)]
    for p in leftovers:
        p.write_bytes(b"partial")
    discard_temporaries(path)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in leftovers)


# ---------------------------------------------------------------------------------------------
# SIGKILL at random moments during saves: the final name always holds one complete checkpoint

# A fork server: it imports torch and tunelab once, then forks one writer per request. Each
# writer resumes from the checkpoint on disk (as `tunelab train --resume` does: discard the
# killed writer's temporaries, continue after its epoch) and saves growing checkpoints forever,
# printing `saved E` after each save returned. The test SIGKILLs the writer at a random moment.
WRITER = textwrap.dedent(
    """
    import os, sys
    import torch
    from tunelab.train import Checkpoint, discard_temporaries, load_checkpoint, save_checkpoint

    torch.set_num_threads(1)
    path = sys.argv[1]

    def version(epoch):
        n = 20_000 * (1 + epoch % 25)  # up to 2 MB, growing
        return Checkpoint(
            epoch=epoch, step=10 * epoch, best=float(epoch), best_epoch=epoch,
            rows=[{"epoch": e, "val_loss": 1.0 / e} for e in range(1, epoch + 1)],
            seconds=float(epoch), model={"w": torch.full((n,), float(epoch))},
            optimizer={"state": {0: {"step": torch.tensor(float(epoch))}}, "param_groups": []},
            schedule={}, callbacks=[], rng={"torch": torch.get_rng_state()}, device="cpu",
        )

    def write_forever():
        epoch = load_checkpoint(path).epoch if os.path.exists(path) else 0
        discard_temporaries(path)
        while True:
            epoch += 1
            save_checkpoint(path, version(epoch))
            os.write(1, f"saved {epoch}\\n".encode())

    while sys.stdin.readline():
        pid = os.fork()
        if pid == 0:
            try:
                write_forever()
            finally:
                os._exit(1)
        os.write(1, f"child {pid}\\n".encode())
        os.waitpid(pid, 0)
        os.write(1, b"reaped\\n")
    """
)


@pytest.mark.slow
def test_sigkill_during_100_saves_never_leaves_a_partial_checkpoint(tmp_path):
    path = tmp_path / CHECKPOINT_FILE
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    server = subprocess.Popen(
        [sys.executable, str(script), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    rng = random.Random(0)
    on_disk, torn_writes, epochs_seen = 0, 0, []
    try:
        for _ in range(100):
            server.stdin.write("go\n")
            server.stdin.flush()
            child, confirmed = None, on_disk  # the writer goes on after the epoch on disk
            for line in iter(server.stdout.readline, "reaped\n"):
                assert line, "the writer server died"
                what, number = line.split()
                if what == "saved":  # the child may save before the server names it
                    confirmed = max(confirmed, int(number))
                elif child is None:
                    child = int(number)
                    time.sleep(rng.uniform(0.0, 0.08))
                    os.kill(child, signal.SIGKILL)
            torn = list(tmp_path.glob(f".{CHECKPOINT_FILE}.*.tmp"))
            assert len(torn) <= 1  # the next writer cleaned up the one before
            torn_writes += len(torn)
            if not path.exists():
                assert confirmed == 0
                continue
            # never a part: the final name holds one complete version, at least the last saved
            state = load_checkpoint(path)
            e = state.epoch
            assert confirmed <= e <= confirmed + 1  # the last save may not have said so yet
            assert state.model["w"].numel() == 20_000 * (1 + e % 25)
            assert torch.equal(state.model["w"], torch.full_like(state.model["w"], float(e)))
            assert [r["epoch"] for r in state.rows] == list(range(1, e + 1))
            assert state.optimizer["state"][0]["step"].item() == e and state.step == 10 * e
            epochs_seen.append(e)
            on_disk = e
    finally:
        server.kill()
        server.wait()
    assert epochs_seen == sorted(epochs_seen)
    # the test tested something: the writers got on, and many kills landed inside a write
    assert epochs_seen[-1] >= 30 and torn_writes >= 10, (epochs_seen[-1], torn_writes)
