"""What the chapters print about replicated runs: per-seed values, mean ± sd, and the test.

The metrics of every seed of a recipe are in its record
(:func:`vaecourse.zoo.seed_metrics`); this module turns them into the tables a
chapter shows, so that every chapter reports seeds the same way: mean ± sample
standard deviation over training seeds, with each seed's value beside it.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence, Union

from vaecore.replicates import Comparison, Replicates, compare, summarize

from . import show, zoo
from .show import Table

__all__ = ["Metric", "values", "replicates", "table", "tests_table", "difference", "stored"]

#: A recorded metric's name, or a function of a run's metrics dict.
Metric = Union[str, Callable[[dict], float]]


def values(name: str, metric: Metric) -> list[float]:
    """``metric`` of every recorded seed of ``name``, in seed order."""
    by_seed = zoo.seed_metrics(name, metric)
    return [by_seed[s] for s in sorted(by_seed)]


def replicates(name: str, metric: Metric) -> Replicates:
    """Mean ± sd of ``metric`` over the seeds of ``name`` (ValueError with fewer than two)."""
    return summarize(values(name, metric))


def table(rows: Mapping[str, str], columns: Mapping[str, Union[Metric, tuple[Metric, int]]],
          *, digits: int = 2, header: tuple[str, str] = ("model", "quantity")) -> Table:
    """The chapters' table of replicated runs: one row per ``label → checkpoint`` and
    ``heading → metric``, with ``mean ± sd`` over the seeds and then each seed's value.

    A column is a metric or ``(metric, digits)``. Every row must have the same seeds
    (ValueError otherwise): the seed columns are shared.
    """
    out, seeds = [], None
    for label, name in rows.items():
        for heading, column in columns.items():
            metric, places = column if isinstance(column, tuple) else (column, digits)
            by_seed = zoo.seed_metrics(name, metric)
            if seeds is None:
                seeds = sorted(by_seed)
            elif sorted(by_seed) != seeds:
                raise ValueError(f"{name}: seeds {sorted(by_seed)}, but the table's other "
                                 f"rows have {seeds}; compare recipes over the same seeds")
            r = summarize([by_seed[s] for s in seeds])
            out.append([label, heading, f"{r.mean:.{places}f} ± {r.sd:.{places}f}",
                        *(f"{v:.{places}f}" for v in r.values)])
    return show.table([*header, "mean ± sd", *(f"seed {s}" for s in seeds or ())], out,
                      align="llr" + "r" * len(seeds or ()),
                      notes=["mean ± sample standard deviation over the training seeds"])


def tests_table(comparisons: Sequence[tuple[str, Comparison, int]]) -> Table:
    """The tests of differences between recipes, one row per ``(what, comparison, digits)``:
    the difference of the means over seeds, ``t``, its degrees of freedom and ``p``."""
    rows = [[what, f"{c.difference:+.{places}f}", f"{c.t:.2f}", f"{c.df:.1f}", f"{c.p:.2g}"]
            for what, c, places in comparisons]
    kinds = sorted({c.test for _, c, _ in comparisons})
    return show.table(["comparison", "difference of means", "t", "df", "p"], rows,
                      align="lrrrr", notes=[", ".join(kinds)])


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
