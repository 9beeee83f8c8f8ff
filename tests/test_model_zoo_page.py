"""book/_ext/model_zoo_page.py: the zoo page's tables (data set, checkpoint, headline test
metrics over seeds) and each record folded under them, from the checkpoints' records."""
from __future__ import annotations

import importlib.util
import json
import math
import re
from pathlib import Path

from vaecourse import store, zoo

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("model_zoo_page", ROOT / "book/_ext/model_zoo_page.py")
ext = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ext)


def test_every_record_has_a_row_and_a_folded_section_with_its_hash_and_command():
    text = ext.zoo_markdown()
    records = [zoo.read_record(p) for p in sorted(store.CHECKOUT_DIR.glob("*.json"))]
    assert records
    tables, _, folded = text.partition("## Every record")
    for info in records:
        name = info["name"]
        assert tables.count(f"{{ref}}`{name} <zoo-{name}>`") == 1, name
        assert f"({'zoo-' + name})=\n:::{{dropdown}} `{name}`" in folded
        assert info["sha256"] in folded and f"`python -m vaecourse.zoo train {name}`\n" in folded
    assert "## MNIST\n" in tables and "## CIFAR-10 birds and horses\n" in tables


def test_a_row_gives_mean_and_sd_over_the_seeds():
    info = {"name": "mnist-x", "sha256": "ab", "seed": 0,
            "metrics": {"test_log_likelihood": -70.0, "test_loss": 90.0, "n_test": 10000},
            "seeds": [{"seed": 1, "metrics": {"test_loss": 92.0}},
                      {"seed": 2, "metrics": {"test_loss": 94.0}}]}
    assert ext.headlines(info) == ["test_loss", "test_log_likelihood"]
    row = ext.row(info)
    assert "loss: 92.00 ± 2.00 (3 seeds)" in row and "log_likelihood: -70.00" in row
    assert math.isclose(float(re.search(r"± ([\d.]+)", row).group(1)), 2.0)
    info["nll"] = {"nll": 88.123, "k": 5000, "sha256": "ab"}
    assert "**NLL 88.12** (k = 5,000)" in ext.row(info)
    info["nll"]["sha256"] = "other weights"
    assert "NLL" not in ext.row(info)


def test_the_page_holds_the_marker_the_extension_replaces():
    page = (ROOT / "book" / "model_zoo.md").read_text(encoding="utf-8")
    assert page.count(ext.MARKER) == 1
    source = [page]
    ext.insert_zoo(None, ext.PAGE, source)
    assert ext.MARKER not in source[0] and "## Every record" in source[0]
    other = [ext.MARKER]
    ext.insert_zoo(None, "book/intro", other)
    assert other == [ext.MARKER]
    json.dumps(source)  # plain text
