"""Bad executor options of `tunelab tune` and `tunelab worker`: one line, exit 2, no study."""

from __future__ import annotations

import pytest

SPEC = """\
name: ex
data: {source: linear, n: 40}
split: {test: 0.2, val: 0.25}
model: linear
train: {epochs: 1, optimizer: {name: sgd, lr: 0.01}}
tune:
  trials: 2
  space:
    train.optimizer.lr: {low: 1.0e-3, high: 1.0e-1, log: true}
"""


def _tune(cli, tmp_path, *extra):
    (tmp_path / "spec.yaml").write_text(SPEC)
    return cli("tune", "spec.yaml", "--out", "s", "-q", *extra)


def test_an_unknown_executor_gets_a_did_you_mean(cli, tmp_path):
    result = _tune(cli, tmp_path, "--executor", "rai")
    assert result.returncode == 2
    assert "--executor: expected local or ray; got 'rai' (did you mean `ray`?)" in result.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.slow  # over 10 s on the 2-core machine: the README's test command stays under 10 min
def test_an_address_without_ray_and_ray_with_nested_cv_are_refused(cli, tmp_path):
    result = _tune(cli, tmp_path, "--address", "auto")
    assert result.returncode == 2 and "use it with --executor ray" in result.stderr
    result = _tune(cli, tmp_path, "--executor", "ray", "--nested", "3")
    assert result.returncode == 2 and "--nested" in result.stderr
    result = _tune(cli, tmp_path, "--executor", "ray", "--trial-cpus", "0")
    assert result.returncode == 2 and "--trial-cpus must be above 0" in result.stderr
    assert not (tmp_path / "s").exists()


def test_executor_ray_without_ray_installed_says_how_to_install_it(cli, tmp_path, monkeypatch):
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)  # a `ray` that cannot be imported, first on the path
    (shadow / "__init__.py").write_text("raise ImportError('No module named ray')\n")
    monkeypatch.setenv("PYTHONPATH", f"{shadow.parent}")
    result = _tune(cli, tmp_path, "--executor", "ray")
    assert result.returncode == 2
    assert "Ray is not installed; install it with pip install tunelab[ray]" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "s").exists()


def test_a_worker_with_no_reachable_database_names_host_and_port(cli, tmp_path):
    result = cli("worker", "--storage", "postgresql://nobody@127.0.0.1:1/none", "--study", "x")
    assert result.returncode == 2
    assert '"127.0.0.1", port 1 failed' in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow  # about 10 s on the 2-core machine: the README's test command stays under 10 min
def test_a_worker_needs_at_least_one_process(cli, tmp_path):
    result = cli("worker", "--storage", f"sqlite:///{tmp_path / 'x.db'}", "--study", "x",
                 "--workers", "0")  # fmt: skip
    assert result.returncode == 2 and "--workers: expected at least 1" in result.stderr


@pytest.mark.slow  # about 10 s on the 2-core machine: the README's test command stays under 10 min
def test_nproc_zero_and_lbfgs_data_parallel_are_refused(cli, tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = cli("train", "spec.yaml", "--out", "r", "--nproc", "0")
    assert result.returncode == 2 and "--nproc: expected at least 1 process; got 0" in result.stderr
    assert not (tmp_path / "r").exists()
    result = cli("train", "spec.yaml", "--out", "r", "--nproc", "2",
                 "--set", "train.optimizer.name=lbfgs")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "cannot run data-parallel" in result.stderr and not (tmp_path / "r").exists()
