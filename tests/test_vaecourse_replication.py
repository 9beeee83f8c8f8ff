"""The chapters' replicated tables: every seed's value, mean ± sd, and the test between recipes."""
from __future__ import annotations

import pytest

from vaecourse import replication, zoo

RUNS = {"a": {0: {"m": 1.0, "k": 2.0}, 1: {"m": 2.0, "k": 2.5}, 2: {"m": 4.0, "k": 3.0}},
        "b": {0: {"m": 0.0, "k": 1.0}, 1: {"m": 0.5, "k": 1.0}, 2: {"m": 0.4, "k": 1.2}}}


@pytest.fixture
def records(monkeypatch):
    def seed_metrics(name, metric, directory=None):
        return {s: (metric(m) if callable(metric) else m[metric]) for s, m in RUNS[name].items()}
    monkeypatch.setattr(zoo, "seed_metrics", seed_metrics)


def test_table_shows_mean_sd_and_every_seeds_value(records):
    t = replication.table({"A": "a", "B": "b"},
                          {"m": "m", "m+k": (lambda r: r["m"] + r["k"], 1)})
    assert t.header == ["model", "quantity", "mean ± sd", "seed 0", "seed 1", "seed 2"]
    assert t.cells == [["A", "m", "2.33 ± 1.53", "1.00", "2.00", "4.00"],
                       ["A", "m+k", "4.8 ± 2.0", "3.0", "4.5", "7.0"],  # m + k: 3, 4.5, 7
                       ["B", "m", "0.30 ± 0.26", "0.00", "0.50", "0.40"],
                       ["B", "m+k", "1.4 ± 0.3", "1.0", "1.5", "1.6"]]
    assert "<table" in t._repr_html_()


def test_table_refuses_rows_with_other_seeds(records, monkeypatch):
    RUNS["c"] = {0: {"m": 1.0}, 1: {"m": 2.0}}
    try:
        with pytest.raises(ValueError, match=r"c: seeds \[0, 1\], but the table's other rows"):
            replication.table({"A": "a", "C": "c"}, {"m": "m"})
    finally:
        del RUNS["c"]


def test_tests_table_gives_the_difference_and_its_test(records):
    welch = replication.difference("a", "b", "m")
    t = replication.tests_table([("a minus b", welch, 2)])
    assert t.cells == [["a minus b", f"{welch.difference:+.2f}", f"{welch.t:.2f}",
                        f"{welch.df:.1f}", f"{welch.p:.2g}"]]
    assert t.notes == [welch.test]


def test_difference_is_welchs_test_unless_paired(records):
    welch = replication.difference("a", "b", "m")
    paired = replication.difference("a", "b", "m", paired=True)
    assert welch.test.startswith("Welch") and paired.test.startswith("paired")
    assert welch.difference == pytest.approx(7 / 3 - 0.3) == paired.difference
    assert replication.values("a", "k") == [2.0, 2.5, 3.0]


def test_stored_results_are_compared_only_when_measured_alike(monkeypatch):
    results = {0: {"nll": 94.1, "k": 1000}, 1: {"nll": 94.3, "k": 1000}, 2: {"nll": 93.9, "k": 1000}}
    monkeypatch.setattr(zoo, "seed_results", lambda name, key, directory=None: results)
    assert replication.stored("a", "nll", "nll", same=("k",)) == {0: 94.1, 1: 94.3, 2: 93.9}
    results[2] = {"nll": 93.0, "k": 5000}
    with pytest.raises(ValueError, match=r"differ in 'k' \(\[1000, 5000\]\)"):
        replication.stored("a", "nll", "nll", same=("k",))
