"""``tunelab compress``: shrink a trained run several ways and say what each costs and gains.

Every variant is written as a run folder of its own (the run's spec, schema, splits and
preprocessing, its model in ``variant.json``'s stored form), so ``tunelab predict`` and
``Run.predict`` work on it. Each is measured the same way: the task's metrics with their
intervals on the sealed test part (each variant's look logged in the seal, as a look of
``evaluate`` is), a paired test against the original on the same samples (McNemar for
classification, a paired bootstrap for regression), size on disk of every file it needs,
non-zero parameters, CPU latency at batch 1 and 256 with the threads fixed, and for ONNX the
largest difference from torch's outputs.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from pydantic import ValidationError

from tunelab.compress._measure import latency_ms, nonzero_parameters, size_bytes, threads
from tunelab.compress._methods import Source
from tunelab.data import Standardizer, features_on, fingerprint
from tunelab.errors import RunError, SpecError, did_you_mean
from tunelab.evaluate import greater_is_better, mcnemar_exact, paired_bootstrap_diff
from tunelab.plugins import COMPRESSIONS, Options, Plugin
from tunelab.runs import Run, ensure_writable, read_json, write_json
from tunelab.train import Predictor, fit, prepare
from tunelab.train._evaluate_run import before_test_look, log_test_look
from tunelab.train._fold import part_metrics, slots

__all__ = ["compress_run", "parse_methods", "CompressionResult", "VariantResult"]

RUN_FILES = (
    "spec.yaml",
    "schema.json",
    "splits.json",
    "preprocess.json",
    "target_scale.json",
    "env.json",
)


@dataclass
class VariantResult:
    """One variant's measurements (the original is the row labelled ``original``)."""

    label: str
    files: list[str]
    size_bytes: int
    nonzero_parameters: int
    latency_ms: dict[str, float]  # batch size -> median milliseconds
    throughput: float  # samples per second at the largest batch
    test: dict  # metric -> {"value", "ci"}
    comparison: dict | None = None  # the paired test against the original
    onnx_max_abs_diff: float | None = None
    folder: str | None = None
    verdict: str = ""

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class CompressionResult:
    run: Path
    out: Path
    threads: int
    batches: list[int]
    rows: list[VariantResult] = field(default_factory=list)

    def to_json(self) -> dict:
        return {
            "run": str(self.run),
            "threads": self.threads,
            "batches": self.batches,
            "variants": [r.to_json() for r in self.rows],
        }


def parse_methods(texts: Sequence[str]) -> list[tuple[str, Options, Plugin]]:
    """``name[:value][+key:value...]`` each (``all``: every method with its defaults) as
    ``(label, options, plugin)``; an unknown name or key gets a did-you-mean."""
    if not texts:
        raise SpecError("no --method given; e.g. --method onnx-int8, or --method all")
    names = [n for t in texts for n in (COMPRESSIONS.names() if t == "all" else [t])]
    parsed, seen = [], set()
    for text in names:
        head, *rest = text.split("+")
        name, _, value = head.partition(":")
        plugin = COMPRESSIONS.get(name)
        values: dict = {"name": name}
        if value:
            position = plugin.extra.get("position")
            if position is None:
                raise SpecError(f"--method {text}: {name} takes no value (write {name})")
            values[position] = value
        for part in rest:
            key, _, val = part.partition(":")
            fields = [f for f in plugin.options.model_fields if f != "name"]
            if key not in fields:
                raise SpecError(
                    f"--method {text}: {name} has no option {key!r}{did_you_mean(key, fields)}; "
                    f"its options: {', '.join(fields) or 'none'}"
                )
            values[key] = val
        try:
            options = plugin.options.model_validate(values)
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
                for e in exc.errors()
            )
            raise SpecError(f"--method {text}: {reasons}") from None
        label = text.replace(":", "")
        if label not in seen:
            seen.add(label)
            parsed.append((label, options, plugin))
    return parsed


def compress_run(
    run: Run | str | Path,
    methods: Sequence[str],
    *,
    out: str | Path | None = None,
    n_threads: int | None = None,
    batches: Sequence[int] = (1, 256),
    repeats: int = 20,
) -> CompressionResult:
    """Make each variant of ``run`` the ``methods`` name, measure every one, and write them
    under ``out`` (default ``<run>-compressed``) with ``compression.json``.

    The data is read again and checked against the run's fingerprints first, so a run whose
    data or split was changed is refused (as ``evaluate`` refuses it); so is a method that
    does not apply to the model, before anything is written.
    """
    run = run if isinstance(run, Run) else Run(run)
    parsed = parse_methods(methods)
    original = Predictor(run, device="cpu")
    for label, options, plugin in parsed:
        why = plugin.extra.get("applies", lambda o, m: None)(options, original.model)
        if why:
            raise SpecError(f"--method {label}: {why}")
    prep = prepare(run.spec, splits=run.splits)
    if prep.X is None:
        raise RunError(
            f"{run.path} reads its data sample by sample (data.cache: none, or over "
            "data.memory_limit); tunelab compress measures on data held in memory. Train the "
            "run again with data.cache: memory to compress it"
        )
    if prep.ds.featurizer is not None:  # a table encoded per training part: as the run's model
        stats = Standardizer.from_json(read_json(run.path / "preprocess.json"))
        prep = replace(prep, X=features_on(prep.ds, stats, prep.device))
    test = prep.splits.test
    if not len(test):
        raise RunError(f"{run.path} has no test part (split.test was 0): nothing to measure on")
    out = _out_folder(
        Path(out) if out is not None else run.path.with_name(f"{run.path.name}-compressed")
    )
    n_threads = n_threads or torch.get_num_threads()
    result = CompressionResult(run.path, out, n_threads, list(batches))
    X_test = prep.X[torch.as_tensor(test, device=prep.device)].cpu()
    saved = run.predictions()
    if not np.array_equal(saved.get("test_index", []), test):
        raise RunError(f"{run.path}/predictions.npz holds no test scores of its test part")
    base = _measure(
        "original", original.model, [run.path / "model.safetensors"], X_test, result, repeats
    )
    base.test = run.metrics.get("test", {})
    result.rows.append(base)
    for label, options, plugin in parsed:
        row, scores = _variant(label, options, plugin, run, prep, original, X_test, result, repeats)
        row.comparison = _compare(prep, test, saved["test_score"], scores)
        row.verdict = _verdict(row, base)
        result.rows.append(row)
    write_json(out / "compression.json", result.to_json())
    return result


def _out_folder(path: Path) -> Path:
    """The folder of the variants: new, empty, or an earlier compression's (its variants of
    the same names are replaced); anything else is refused rather than written into."""
    if path.exists() and not path.is_dir():
        raise RunError(f"--out {path} is a file; give a folder for the variants")
    if path.is_dir() and any(path.iterdir()) and not (path / "compression.json").is_file():
        raise RunError(
            f"--out {path} holds other files (no compression.json); give a new or empty folder"
        )
    path.mkdir(parents=True, exist_ok=True)
    ensure_writable(path, what="compression folder")
    return path


def _source(run: Run, prep, original: Predictor, folder: Path, label: str, options) -> Source:
    splits = prep.splits
    train_idx = splits.folds[0].train if len(splits.folds) == 1 else splits.dev
    rng = np.random.default_rng(prep.spec.seed)
    sample = np.sort(rng.permutation(train_idx)[:512])
    example = prep.X[torch.as_tensor(sample, device=prep.device)].cpu()

    def finetune(model: torch.nn.Module, epochs: int) -> None:
        t_idx = torch.as_tensor(train_idx, device=prep.device)
        model.to(prep.device).train()
        fit(
            model,
            (prep.X[t_idx], prep.y[t_idx]),
            None,
            prep.plan,
            seed=prep.spec.seed,
            epochs=epochs,
        )
        model.cpu().eval()

    info = {"method": label, "options": options.model_dump(), "parent": str(run.path.resolve())}
    return Source(copy.deepcopy(original.model).cpu().eval(), example, folder, finetune, info)


def _variant(label, options, plugin, run, prep, original, X_test, result, repeats):
    folder = result.out / label
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in RUN_FILES:
        if (run.path / name).is_file():
            shutil.copy2(run.path / name, folder / name)
    files = plugin.build(options, _source(run, prep, original, folder, label, options))
    variant = Run(folder)
    predictor = Predictor(variant, device="cpu")  # read back from disk: what predict will use
    row = _measure(label, predictor.model, files, X_test, result, repeats)
    row.folder = str(folder)
    test = prep.splits.test
    sealed = before_test_look(variant, variant.spec)
    featurized = prep.ds.featurizer is not None  # the test rows as predict takes them
    scores = predictor.predict(prep.ds.table.iloc[test] if featurized else X_test).scores
    values = part_metrics(prep, test, scores)
    row.test = slots(prep, test, scores, values)
    if sealed is not None:
        log_test_look(variant, variant.spec, sealed, values, fingerprint(prep.ds, test))
    write_json(folder / "metrics.json", {"test": row.test})
    variant.write_predictions({"test_index": test, "test_y": prep.ds.y[test], "test_score": scores})
    if row.files and row.files[0].endswith(".onnx"):
        with torch.inference_mode():
            torch_out = original.model.cpu()(X_test)
            onnx_out = predictor.model(X_test)
        row.onnx_max_abs_diff = float((torch_out - onnx_out).abs().max())
    return row, scores


def _measure(label, model, files, X, result: CompressionResult, repeats: int) -> VariantResult:
    with threads(result.threads):
        lat = {
            str(b): latency_ms(
                model, X, batch=b, repeats=repeats if b == 1 else max(3, repeats // 4)
            )
            for b in result.batches
        }
    largest = max(result.batches)
    return VariantResult(
        label=label,
        files=[str(Path(f).name) for f in files],
        size_bytes=size_bytes(files),
        nonzero_parameters=nonzero_parameters(model, files),
        latency_ms=lat,
        throughput=1000.0 * largest / lat[str(largest)],
        test={},
    )


def _compare(prep, test: np.ndarray, base: np.ndarray, scores: np.ndarray) -> dict:
    """The variant against the original on the same test samples."""
    y, task = prep.ds.y[test], prep.ds.task
    if task == "classification":
        a, b = base.argmax(axis=1) == y, scores.argmax(axis=1) == y
        test_result = mcnemar_exact(a, b)
        return {
            "test": "McNemar",
            "metric": "accuracy",
            "diff": float(b.mean() - a.mean()),
            "p_value": test_result.p_value,
            "discordant": [test_result.b, test_result.c],
        }
    metric = prep.plan.eval_metrics[0]
    diff = paired_bootstrap_diff(task, y, base, scores, metric, seed=prep.spec.seed)
    return {"test": "paired bootstrap", "metric": metric} | asdict(diff)


def _ratio(base: float, value: float, more: str, less: str) -> str:
    if value <= 0 or base <= 0:
        return f"not {more}"
    r = base / value
    return f"{r:.1f}x {more}" if r >= 1 else f"{1 / r:.1f}x {less}"


def _verdict(row: VariantResult, base: VariantResult) -> str:
    """``int8: 3.9x smaller, 2.1x faster at batch 1, accuracy not significantly different
    (McNemar p = 0.62)``."""
    parts = [_ratio(base.size_bytes, row.size_bytes, "smaller", "larger")]
    for b, ms in row.latency_ms.items():
        parts.append(f"{_ratio(base.latency_ms[b], ms, 'faster', 'slower')} at batch {b}")
    c = row.comparison or {}
    p, diff = c.get("p_value", float("nan")), c.get("diff", 0.0)
    if not p < 0.05:
        change = "not significantly different"
    else:
        better = (diff > 0) == greater_is_better(c["metric"])
        change = "significantly better" if better else "significantly worse"
    return (
        f"{row.label}: {', '.join(parts)}; {c.get('metric')} {change} ({c.get('test')} p = {p:.2g})"
    )
