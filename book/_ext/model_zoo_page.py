"""The model zoo page: what a reader compares first, the rest of each record on demand.

``book/model_zoo.md`` holds the marker ``<!-- model zoo -->``; when Sphinx reads the page,
the marker is replaced by one short table per data set, read from the checkpoints'
records (:func:`vaecourse.zoo.read_record`, the records ``python -m vaecourse.zoo readme``
also reads): the checkpoint, its two headline test metrics (mean ± standard deviation
over the recorded seeds, with their number) and the importance-sampled test NLL where
one was measured. Under the tables, each checkpoint has a folded section with everything
else its record says: what was trained and how, every metric, every seed, the training
time, the file's size and sha256, and the command that reproduces it.
"""
from __future__ import annotations

import math
from pathlib import Path

MARKER = "<!-- model zoo -->"
PAGE = "book/model_zoo"
DATA = {"mnist": "MNIST", "mnist32": "MNIST padded to 32×32", "cifar": "CIFAR-10 birds and horses",
        "shapes": "Shapes"}
HEADLINES = 2  # metrics per row of the tables
#: Which metrics a row shows first, where a record has them; then the record's own order.
PREFERRED = ("test_accuracy", "test_loss", "test_elbo", "test_bits_per_dim", "test_fid_10000",
             "test_mse", "test_kl", "test_precision", "test_recall")


def number(v) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) >= 100):
        return f"{int(v):,}"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def runs(info: dict) -> list[dict]:
    """Seed 0 (the shipped weights) and every other recorded seed: ``{"seed", "metrics"}``."""
    return [{"seed": info.get("seed", 0), "metrics": info["metrics"]}, *info.get("seeds", [])]


def summary(info: dict, metric: str) -> str:
    """``metric`` over the recorded seeds: "−88.12 ± 0.31 (3 seeds)", or seed 0's value alone."""
    values = [float(r["metrics"][metric]) for r in runs(info) if metric in r["metrics"]]
    if len(values) < 2:
        return number(info["metrics"][metric])
    mean = math.fsum(values) / len(values)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    return f"{number(mean)} ± {number(sd)} ({len(values)} seeds)"


def headlines(info: dict) -> list[str]:
    """The metrics a row shows: the first of PREFERRED the record has, then its others."""
    names = [k for k, v in info["metrics"].items()
             if isinstance(v, (int, float)) and not k.startswith("n_")]
    names.sort(key=lambda k: PREFERRED.index(k) if k in PREFERRED else len(PREFERRED))
    return names[:HEADLINES]


def data_set(name: str) -> str:
    prefix = name.split("-")[0]
    return DATA.get(prefix, prefix)


def row(info: dict) -> str:
    metrics = "<br>".join(f"{m.removeprefix('test_')}: {summary(info, m)}" for m in headlines(info))
    nll = info.get("nll")
    if nll and nll.get("sha256") == info["sha256"]:
        metrics += f"<br>**NLL {nll['nll']:.2f}** (k = {nll['k']:,})"
    return f"| {{ref}}`{info['name']} <zoo-{info['name']}>` | {metrics} |"


def details(info: dict) -> str:
    every = "; ".join(f"{k} {number(v) if isinstance(v, (int, float)) else v}"
                      for k, v in info["metrics"].items())
    seeds = "; ".join(f"seed {r['seed']}: " + ", ".join(
        f"{k} {number(v)}" for k, v in r["metrics"].items() if isinstance(v, (int, float)))
        for r in runs(info)[1:])
    threads = f"{info['threads']} thread{'s' if info['threads'] > 1 else ''}"
    lines = [
        f"({'zoo-' + info['name']})=",
        f":::{{dropdown}} `{info['name']}`",
        f"{info['summary']}",
        "",
        f"- **Test metrics** (seed {info.get('seed', 0)}, the shipped weights): {every}",
    ]
    if seeds:
        lines.append(f"- **Other seeds**: {seeds}")
    lines += [
        f"- **Training**: {info['epochs']} epochs, {info['train_wall_time_s'] / 60:.1f} min "
        f"({threads}, {info['machine']})",
        f"- **File**: {info['bytes'] / 2**20:.1f} MiB, sha256 `{info['sha256']}`",
        f"- **Reproduce**: `python -m vaecourse.zoo train {info['name']}`",
        ":::",
    ]
    return "\n".join(lines)


def zoo_markdown(directory: Path | None = None) -> str:
    """The tables and the folded records of every checkpoint in ``directory`` (the checkout's)."""
    from vaecourse import store, zoo
    folder = Path(directory) if directory is not None else store.CHECKOUT_DIR
    records = [zoo.read_record(path) for path in sorted(folder.glob("*.json"))]
    groups: dict[str, list[dict]] = {}
    for info in records:
        groups.setdefault(data_set(info["name"]), []).append(info)
    parts = []
    for title, infos in groups.items():
        parts += [f"## {title}", "", "| checkpoint | test metrics |", "| --- | --- |",
                  *(row(i) for i in infos), ""]
    parts += ["## Every record", ""]
    parts += [details(i) + "\n" for i in records]
    return "\n".join(parts)


def insert_zoo(app, docname, source) -> None:
    if docname == PAGE and MARKER in source[0]:
        source[0] = source[0].replace(MARKER, zoo_markdown())


def setup(app):
    app.connect("source-read", insert_zoo)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
