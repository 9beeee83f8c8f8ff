"""What the chapters print about replicated runs: per-seed values, mean ± sd, and the test.

The metrics of every seed of a recipe are in its record
(:func:`vaecourse.zoo.seed_metrics`); this module turns them into the rows a
chapter prints, so that every chapter reports seeds the same way: mean ± sample
standard deviation over training seeds, with the per-seed values beside it.
"""
from __future__ import annotations

from typing import Callable, Mapping, Union

from vaecore.replicates import Comparison, Replicates, compare, summarize

from . import zoo

__all__ = ["Metric", "values", "replicates", "table", "difference", "stored"]

#: A recorded metric's name, or a function of a run's metrics dict.
Metric = Union[str, Callable[[dict], float]]


def values(name: str, metric: Metric) -> list[float]:
    """``metric`` of every recorded seed of ``name``, in seed order."""
    by_seed = zoo.seed_metrics(name, metric)
    return [by_seed[s] for s in sorted(by_seed)]


def replicates(name: str, metric: Metric) -> Replicates:
    """Mean ± sd of ``metric`` over the seeds of ``name`` (ValueError with fewer than two)."""
    return summarize(values(name, metric))


def table(rows: Mapping[str, str], columns: Mapping[str, Metric], *, digits: int = 2) -> str:
    """A text table: one row per ``label → checkpoint``, one column per ``heading → metric``.

    Each cell is ``mean ± sd``; a last column lists the seeds; one line per
    row below the table gives every cell's per-seed values.
    """
    cells = {label: {h: replicates(name, m) for h, m in columns.items()}
             for label, name in rows.items()}
    width = max(len(label) for label in rows)
    col = {h: max(len(h), 2 * digits + 9) for h in columns}
    lines = [f"{'':{width}} | " + " | ".join(f"{h:>{col[h]}}" for h in columns) + " | seeds"]
    for label, name in rows.items():
        seeds = sorted(zoo.seed_metrics(name, next(iter(columns.values()))))
        lines.append(f"{label:{width}} | " + " | ".join(
            f"{f'{r.mean:.{digits}f} ± {r.sd:.{digits}f}':>{col[h]}}"
            for h, r in cells[label].items()) + f" | {','.join(map(str, seeds))}")
    lines.append("per seed, in the order of the seeds column:")
    for label, row in cells.items():
        lines.append(f"  {label}: " + "; ".join(
            f"{h} " + ", ".join(f"{v:.{digits}f}" for v in r.values) for h, r in row.items()))
    return "\n".join(lines)


def difference(a: str, b: str, metric: Metric, *, paired: bool = False) -> Comparison:
    """The test of ``metric(a) - metric(b)`` over their seeds (Welch's t-test, or paired by seed)."""
    return compare(values(a, metric), values(b, metric), paired=paired)


def stored(name: str, key: str, field: str, *, same: tuple[str, ...] = ()) -> dict[int, float]:
    """``{seed: value}`` of ``field`` in the result stored under ``key`` for every seed of ``name``.

    The results are those written by :func:`vaecourse.zoo.write_seed_result`
    (e.g. ``key="nll"``, ``field="nll"`` by ``benchmarks/nll.py --seed-runs
    0,1,2``), checked against each seed's weights. ``same`` names fields that
    must agree across seeds for the values to be compared (e.g. the number
    of importance samples ``"k"``): ValueError when they do not.
    """
    results = zoo.seed_results(name, key)
    for f in same:
        found = {r.get(f) for r in results.values()}
        if len(found) != 1:
            raise ValueError(f"{name}: the seeds' {key!r} results differ in {f!r} "
                             f"({sorted(found, key=str)}); measure them alike")
    return {seed: float(results[seed][field]) for seed in sorted(results)}
