"""The likelihood benchmark: the estimate on a tractable model, records, shipped results."""
import importlib.util
import json
import math
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from test_elbo import closed_form_elbo, linear_gaussian

from vaecourse import replication, zoo
from vaecourse.chapters.ch11_evaluation import BENCHMARK, PUBLISHED, TABLE, stored_nll
from vaecore.nll import NLLResult, estimate_nll, stored_result, write_result

ROOT = Path(__file__).resolve().parents[1]
needs_mnist = pytest.mark.skipif(
    not (os.environ.get("VAECORE_DATA_DIR")
         and Path(os.environ["VAECORE_DATA_DIR"], "mnist", "t10k-images-idx3-ubyte.gz").exists()),
    reason="MNIST not in $VAECORE_DATA_DIR")


def test_estimate_nll_recovers_the_exact_likelihood():
    model, x, log_px = linear_gaussian(shift=0.1, scale=0.9, extra_logvar=0.3)
    result, per_example = estimate_nll(model, x, 4000, seed=3, batch_size=2, chunk=300)
    torch.testing.assert_close(per_example, log_px, rtol=0, atol=0.03)
    assert math.isclose(result.nll, -log_px.mean().item(), abs_tol=0.03)
    assert math.isclose(result.nll_se, log_px.std().item() / math.sqrt(len(x)), rel_tol=0.05)
    # the one-sample ELBO: an unbiased estimate of the closed form, which lies above the NLL
    assert abs(result.negative_elbo + closed_form_elbo(model, x).mean().item()) < 1.0
    assert result.negative_elbo > result.nll
    assert (result.k, result.n_test, result.seed) == (4000, len(x), 3)


def test_estimate_nll_is_reproducible_and_refuses_non_finite_models():
    model, x, _ = linear_gaussian(shift=0.3)
    first, _ = estimate_nll(model, x, 20, seed=1)
    second, _ = estimate_nll(model, x, 20, seed=1)
    assert first._replace(wall_time_s=0) == second._replace(wall_time_s=0)
    with torch.no_grad():
        model.decoder.to_x.bias[0] = math.nan
    with pytest.raises(FloatingPointError, match="non-finite"):
        estimate_nll(model, x, 5)
    with pytest.raises(ValueError, match="k"):
        estimate_nll(model, x, 0)


def _fake_record(folder, name="m", sha="abc"):
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "sha256": sha}))


def test_write_and_read_back_a_result(tmp_path):
    _fake_record(tmp_path)
    assert stored_result(tmp_path / "m.json") is None
    result = NLLResult(88.1, 0.3, 92.5, 0.3, 5000, 10000, 0, 12.0)
    info = write_result(tmp_path / "m.json", result, "python benchmarks/nll.py --write m")
    assert info["nll"]["sha256"] == "abc" and info["nll"]["command"].startswith("python")
    assert stored_result(tmp_path / "m.json") == result


def test_a_result_of_another_checkpoint_is_refused(tmp_path):
    _fake_record(tmp_path)
    write_result(tmp_path / "m.json", NLLResult(88.1, 0.3, 92.5, 0.3, 5000, 10000, 0, 12.0), "cmd")
    info = json.loads((tmp_path / "m.json").read_text())
    info["sha256"] = "retrained"
    (tmp_path / "m.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="another checkpoint"):
        stored_result(tmp_path / "m.json")
    with pytest.raises(FileNotFoundError, match="no record"):
        stored_result(tmp_path / "missing.json")


def test_published_numbers_cite_the_bibliography():
    keys = set(re.findall(r"@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text()))
    assert {p.source for p in PUBLISHED} <= keys
    assert [p.nll for p in PUBLISHED] == [86.76, 84.78, 82.90, 89.78]


@pytest.mark.parametrize("name", BENCHMARK)
def test_every_benchmark_model_ships_a_result_of_its_checkpoint(name):
    result = stored_nll(name)  # raises if measured on another checkpoint
    assert result is not None, f"run: python benchmarks/nll.py --write {name}"
    assert result.n_test == 10_000 and result.k >= 1000
    assert 60 < result.nll < result.negative_elbo < 130
    # the benchmark's one-sample ELBO and the zoo's (other z samples, same test images) agree
    assert abs(result.negative_elbo - zoo.record(name)["metrics"]["test_loss"]) < 0.5


@pytest.mark.parametrize("name", TABLE)
def test_every_seed_of_the_table_has_its_nll_on_one_k(name):
    by_seed = replication.stored(name, "nll", "nll", same=("k", "n_test", "seed"))
    assert sorted(by_seed) == [0, 1, 2]
    first = zoo.seed_results(name, "nll")[0]
    assert first["n_test"] == 10_000 and first["k"] >= 1000
    # the shipped seed at the seeds' k sits below (or near) its own k = 5000 estimate
    assert stored_nll(name).nll < by_seed[0] + 0.5
    assert all(60 < v < 130 for v in by_seed.values())


@needs_mnist
def test_benchmark_script_prints_ours_beside_the_published(capsys):
    spec = importlib.util.spec_from_file_location("nll_benchmark", ROOT / "benchmarks" / "nll.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["mnist-mlp-bernoulli-z20-e30", "--k", "3", "--n-test", "4"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"mnist-mlp-bernoulli-z20-e30\s+\d+\.\d\d ± ", out)
    assert "86.76" in out and "84.78" in out and "89.78" in out and "k = 3 " in out


@needs_mnist
def test_benchmark_script_stores_the_shipped_seed_beside_the_others(tmp_path, monkeypatch):
    name = "mnist-mlp-bernoulli-z20-e30"
    for suffix in (".json", ".pt"):
        shutil.copy(ROOT / "checkpoints" / (name + suffix), tmp_path)
    monkeypatch.setenv("VAECORE_CHECKPOINT_DIR", str(tmp_path))
    spec = importlib.util.spec_from_file_location("nll_benchmark", ROOT / "benchmarks" / "nll.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    headline = json.loads((tmp_path / (name + ".json")).read_text())["nll"]
    assert module.main([name, "--k", "3", "--n-test", "4", "--seed-runs", "0", "--write"]) == 0
    info = json.loads((tmp_path / (name + ".json")).read_text())
    assert info["nll"] == headline  # the shipped seed's k = 5000 result is kept
    assert info["seed0"]["nll"]["k"] == 3 and info["seed0"]["nll"]["sha256"] == info["sha256"]
    assert info["seed0"]["nll"]["command"].endswith("--seed-runs 0")
