"""Concurrent writers: 8 worker processes x 20 trials on SQLite and on PostgreSQL.

Exactly 160 trials with unique numbers, every worker took part, and no lock error reaches the
user. The PostgreSQL test uses a throwaway database on 127.0.0.1:5432 (trust auth).
"""

from __future__ import annotations

import optuna
import pytest

SPEC = """\
name: writers
data: {source: linear, n: 32}
split: {test: 0.2, val: 0.25}
model: linear
train: {epochs: 1, batch_size: 32, optimizer: {name: sgd, lr: 0.01}}
tune:
  trials: 160
  sampler: random
  pruner: none
  refit: false
  space:
    train.optimizer.lr: {low: 1.0e-4, high: 1.0e-1, log: true}
"""


def _check(result, url: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "locked" not in output.lower() and "Traceback" not in output
    trials = optuna.load_study(study_name="writers", storage=url).get_trials()
    assert len(trials) == 160
    assert sorted(t.number for t in trials) == list(range(160))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 8


@pytest.mark.slow
def test_eight_workers_on_sqlite(cli, tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = cli("tune", "spec.yaml", "--out", "study", "--workers", "8", "-q", timeout=600)
    _check(result, f"sqlite:///{tmp_path / 'study' / 'study.db'}")


@pytest.mark.slow
def test_eight_workers_on_postgres(cli, tmp_path, postgres_url):
    (tmp_path / "spec.yaml").write_text(SPEC)
    result = cli(
        "tune",
        "spec.yaml",
        "--out",
        "study",
        "--workers",
        "8",
        "--storage",
        postgres_url,
        "-q",
        timeout=600,
    )
    _check(result, postgres_url.replace("postgresql://", "postgresql+psycopg://"))
