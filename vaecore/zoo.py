"""The model zoo: every shipped checkpoint, the recipe that trains it, and its record.

A *recipe* builds a fresh model, trains it and evaluates it on held-out data.
``python -m vaecore.zoo train NAME`` runs one and writes, inside the package,

- ``checkpoints/NAME.pt``: the ``state_dict`` with config, metrics and history
  (loaded with ``weights_only=True``), and
- ``checkpoints/NAME.json``: its record: size, sha256, the command, wall
  time, threads, versions and the test metrics.

Chapters call :func:`load`, which builds the model and loads its weights, or
trains it first when no checkpoint exists ("checkpoint exists → load, else
train"). :func:`load` first checks the file's size and sha256 against its
record and refuses a file that differs. Training saves each finished epoch to
``NAME.partial.pt``; a run that is interrupted resumes from there when started
again.

    python -m vaecore.zoo list | train NAME [NAME ...] | verify | table | readme
"""
from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import torch

from . import __version__
from .checkpoint import (CHECKPOINT_DIR, Checkpoint, _atomic_file, file_sha256, load_checkpoint,
                         save_checkpoint)
from .train import History

__all__ = ["Recipe", "recipes", "load", "train", "record", "verify", "table", "readme", "main"]


class Recipe(NamedTuple):
    """How one checkpoint is made: plain callables, no configuration language."""

    build: Callable[[], torch.nn.Module]  # a fresh model, seeded
    train: Callable[..., History]  # train(model, checkpoint=path, history=None) -> History
    evaluate: Callable[[torch.nn.Module], dict]  # held-out metrics (JSON-like)
    summary: str  # data, model, objective and schedule in one line


def recipes() -> dict[str, Recipe]:
    """All recipes, by checkpoint name."""
    from .recipes import RECIPES  # imported late: recipes import the models and data
    return RECIPES


def _recipe(name: str) -> Recipe:
    table_ = recipes()
    if name not in table_:
        raise ValueError(f"unknown checkpoint {name!r}; expected one of {sorted(table_)}")
    return table_[name]


# What ``train`` writes in a record, and the types the other functions rely on.
RECORD_KEYS = {"name": str, "file": str, "bytes": int, "sha256": str, "command": str,
               "summary": str, "epochs": int, "train_wall_time_s": (int, float),
               "threads": int, "machine": str, "torch": str, "vaecore": str, "metrics": dict}


def _read_record(path: Path) -> dict:
    """The record at ``path``; ValueError naming the file unless it has ``RECORD_KEYS``."""
    expected = f"expected a JSON object with keys {', '.join(RECORD_KEYS)}"
    try:
        info = json.loads(path.read_text())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} is not a readable record (empty or truncated?): {e}; "
                         f"{expected}. Re-train to rewrite it: "
                         f"python -m vaecore.zoo train {path.stem}") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: {expected}, got a JSON {type(info).__name__}")
    wrong = [k for k, kind in RECORD_KEYS.items()
             if not isinstance(info.get(k), kind) or isinstance(info.get(k), bool)]
    if wrong:
        raise ValueError(f"{path}: {expected}; missing or of the wrong type: {', '.join(wrong)}")
    return info


def record(name: str, directory=None) -> dict:
    """The JSON record of checkpoint ``name`` (FileNotFoundError if it was never trained).

    ValueError, naming the file and the expected keys, for a record that is
    empty, truncated or lacks any of ``RECORD_KEYS``.
    """
    path = Path(directory or CHECKPOINT_DIR) / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no record {path}; train it with: python -m vaecore.zoo train {name}")
    return _read_record(path)


def _check_against_record(path: Path, name: str, directory) -> None:
    """Raise unless the file at ``path`` has the size and sha256 of ``name``'s record."""
    try:
        info = record(name, directory)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} has no record {path.with_suffix('.json')}, so it cannot be checked "
            f"against its sha256; restore the record with the file, or delete {path.name} "
            f"and re-train: python -m vaecore.zoo train {name}") from None
    size = path.stat().st_size
    digest = file_sha256(path) if size == info["bytes"] else "(not computed: the size differs)"
    if info["file"] != path.name or digest != info["sha256"]:
        raise ValueError(
            f"{path} does not match its record {path.with_suffix('.json').name}: expected "
            f"{info['file']} of {info['bytes']} bytes with sha256 {info['sha256']}, got "
            f"{size} bytes with sha256 {digest}. The file was changed or damaged: restore it "
            f"(e.g. reinstall vaecore or git checkout the file) or re-train it: "
            f"python -m vaecore.zoo train {name}")


def load(name: str, *, train_if_missing: bool = True, directory=None):
    """Return ``(model, checkpoint)`` for ``name``, in eval mode.

    Loads ``checkpoints/NAME.pt``; if it is missing, trains it first when
    ``train_if_missing`` (this can take minutes), else raises FileNotFoundError.
    Before loading, the file's size and sha256 are compared with its record
    ``NAME.json``: a file that differs raises ValueError, and a file without a
    record raises FileNotFoundError (neither is loaded); both messages say how
    to restore or re-train it.
    """
    recipe = _recipe(name)
    path = Path(directory or CHECKPOINT_DIR) / f"{name}.pt"
    if not path.is_file():
        if not train_if_missing:
            raise FileNotFoundError(f"{path} is missing; python -m vaecore.zoo train {name}")
        train(name, directory=directory)
    _check_against_record(path, name, directory)
    model = recipe.build()
    checkpoint = load_checkpoint(path, model)
    return model.eval(), checkpoint


def train(name: str, *, directory=None, progress: bool = True) -> Checkpoint:
    """Train recipe ``name`` (resuming an interrupted run), evaluate, save, record."""
    recipe = _recipe(name)
    folder = Path(directory or CHECKPOINT_DIR)
    final, partial = folder / f"{name}.pt", folder / f"{name}.partial.pt"
    model, history, before = recipe.build(), None, 0.0
    if partial.is_file():  # resume from the last finished epoch
        resumed = load_checkpoint(partial, model)
        history, before = resumed.history, sum(resumed.history.epoch_time)
        if progress:
            print(f"{name}: resuming after epoch {len(history)}")
    start = time.perf_counter()
    history = recipe.train(model, checkpoint=partial, history=history)
    wall = before + time.perf_counter() - start
    metrics = recipe.evaluate(model.eval())
    save_checkpoint(final, model, config={"recipe": name, "summary": recipe.summary},
                    metrics=metrics, history=history)
    partial.unlink(missing_ok=True)
    info = {"name": name, "file": final.name, "bytes": final.stat().st_size,
            "sha256": file_sha256(final), "command": f"python -m vaecore.zoo train {name}",
            "summary": recipe.summary, "epochs": len(history),
            "train_wall_time_s": round(wall, 1), "threads": torch.get_num_threads(),
            "machine": f"{platform.machine()} CPU" if not torch.cuda.is_available() else
            torch.cuda.get_device_name(), "torch": torch.__version__, "vaecore": __version__,
            "metrics": metrics}
    with _atomic_file(folder / f"{name}.json") as f:  # never a half-written record
        f.write((json.dumps(info, indent=2) + "\n").encode())
    return load_checkpoint(final)


def verify(directory=None) -> list[str]:
    """Problems with the shipped checkpoints (an empty list when all is well).

    An unreadable or incomplete record is reported as a problem, not raised.
    """
    folder = Path(directory or CHECKPOINT_DIR)
    problems = []
    for meta in sorted(folder.glob("*.json")):
        try:
            info = _read_record(meta)
        except ValueError as e:
            problems.append(f"{meta.stem}: {e}")
            continue
        path = folder / info["file"]
        if not path.is_file():
            problems.append(f"{info['name']}: {path.name} is missing")
        elif file_sha256(path) != info["sha256"] or path.stat().st_size != info["bytes"]:
            problems.append(f"{info['name']}: {path.name} does not match its recorded sha256/size")
    return problems


def table(directory=None) -> str:
    """A Markdown table of every shipped checkpoint and its record (ValueError for a bad one)."""
    rows = ["| checkpoint | what | epochs | train time | test metrics | size | sha256 |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for meta in sorted(Path(directory or CHECKPOINT_DIR).glob("*.json")):
        i = _read_record(meta)
        metrics = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in i["metrics"].items())
        if "nll" in i and i["nll"]["sha256"] == i["sha256"]:  # from benchmarks/nll.py
            metrics += f"; **test NLL {i['nll']['nll']:.2f}** (k = {i['nll']['k']:,})"
        rows.append(f"| `{i['name']}` | {i['summary']} | {i['epochs']} | "
                    f"{i['train_wall_time_s'] / 60:.1f} min ({i['threads']} thread"
                    f"{'s' if i['threads'] > 1 else ''}, {i['machine']}) | "
                    f"{metrics} | {i['bytes'] / 2**20:.1f} MiB | `{i['sha256'][:12]}…` |")
    return "\n".join(rows)


README_HEADER = """# Model zoo

Every checkpoint shipped with vaecore, generated by `python -m vaecore.zoo readme`
from the records written at training time. Each one is reproduced by
`python -m vaecore.zoo train NAME`; `python -m vaecore.zoo verify` checks the
files against their sha256. Metrics are on held-out data as the recipe states
(MNIST: the 10,000 test images, binarized once with a fixed seed, one sample
of z per image, nats per image; the test NLL is the importance-sampled estimate
of `benchmarks/nll.py`, with k samples per image). Train times are wall-clock
on the machine named, often shared with other jobs.

"""


def readme(directory=None) -> str:
    """The text of ``checkpoints/README.md``: a header and :func:`table`."""
    return README_HEADER + table(directory) + "\n"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("list", "train", "verify", "table", "readme"):
        print(__doc__)
        return 2
    if argv[0] == "list":
        for name, r in sorted(recipes().items()):
            print(f"{name}: {r.summary}")
    elif argv[0] == "train":
        for name in argv[1:] or sys.exit("train: name at least one checkpoint"):
            start = time.perf_counter()
            ckpt = train(name)
            print(f"{name}: {ckpt.metrics} (wall time: {time.perf_counter() - start:.0f} s)")
    elif argv[0] == "verify":
        problems = verify()
        print("\n".join(problems) or "all checkpoints match their records")
        return 1 if problems else 0
    elif argv[0] == "table":
        print(table())
    else:
        with _atomic_file(CHECKPOINT_DIR / "README.md") as f:
            f.write(readme().encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
