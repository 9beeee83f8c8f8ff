"""Check that a chapter's evaluation reproduces what a shipped record says."""
from __future__ import annotations

import pytest

from vaecourse import zoo


def reproduced_metrics(name: str, evaluate, left_out: tuple[str, ...] = ()) -> dict:
    """``evaluate(model)`` of seed 0 of ``name``, asserted equal to the record's metrics.

    ``left_out``: record entries that ``evaluate`` does not compute (a cheaper evaluation).
    """
    info = zoo.record(name)
    model, _ = zoo.load(name)
    metrics = evaluate(model)
    assert set(left_out) <= info["metrics"].keys()
    assert metrics.keys() == info["metrics"].keys() - set(left_out)
    for key, value in metrics.items():
        assert value == pytest.approx(info["metrics"][key], rel=1e-6, abs=1e-9), key
    return metrics


def seed_runs(name: str, seeds) -> list[dict]:
    """The record of ``name`` and its seeds' entries, asserted to be ``seeds`` in order with the
    same metric names."""
    info = zoo.record(name)
    runs = [info, *info["seeds"]]
    recorded = [r.get("seed", 0) for r in runs]
    assert recorded == list(seeds), f"{name}: seeds {recorded}, expected {list(seeds)}"
    for r in runs:
        assert r["metrics"].keys() == info["metrics"].keys(), f"{name}, seed {r.get('seed', 0)}"
    return runs
