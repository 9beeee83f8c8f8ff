"""The model zoo: every checkpoint the chapters load, the recipe that trains it, and its record.

:data:`RECIPES` is the explicit table, checkpoint name → :class:`vaecourse.recipe.Recipe`,
merged from the chapter modules; :data:`ALIASES` maps the names of release
0.1 to the current ones through release 0.2. ``python -m vaecourse.zoo
train NAME`` runs a recipe and writes two files (see :mod:`vaecourse.store`
for where):

- ``NAME.pt``: the ``state_dict`` with config, metrics and history
  (loaded with ``weights_only=True``), and
- ``NAME.json``: its record: size, sha256, the command, wall time, threads,
  versions and the test metrics.

Chapters call :func:`load`, which finds the weights (on disk or downloaded),
checks their size and sha256 against the record, builds the model and loads
them, or trains it first when no checkpoint exists anywhere ("checkpoint
exists → load, else train"). Training saves each finished epoch to
``NAME.partial.pt``; a run that is interrupted resumes from there.

    python -m vaecourse.zoo list | train NAME [NAME ...] [--seeds 0,1,2] | ship NAME --seed S
                            | restore NAME --seed S
                            | verify | table | readme

Seeds: seed 0 is the shipped run; ``--seeds 0,1,2`` also trains seeds 1 and
2 (another initialisation and data order each), whose metrics join the
record's ``seeds`` list and whose weights stay in ``seeds/`` unshipped
(``ship NAME --seed S`` ships one of them beside the record, for a chapter
that must show two seeds' models; ``restore NAME --seed S`` retrains a seed's
missing weights and ties the record to them when the run reproduces the record).
``--missing`` skips the runs already recorded by today's recipe, so that an
interrupted batch of runs is resumed by repeating its command.
"""
from __future__ import annotations

import json
import math
import platform
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: seeds of one recipe are then added one process at a time
    fcntl = None

import torch

from vaecore import __version__, distributed
from vaecore.checkpoint import Checkpoint, _atomic_file, file_sha256, load_checkpoint, save_checkpoint
from vaecore.device import default_device

from . import provenance, store
from .chapters import (ch05_first_vae, ch06_latent_space, ch07_beta, ch08_residual_vae,
                       ch09_vae_vs_gan, ch10_mmd_vae, ch11_evaluation, ch12_disentanglement,
                       ch13_posterior_collapse, ch14_inference_gaps,
                       ch15_conditional_vae, ch16_vq_vae, ch17_latent_diffusion,
                       ch18_priors_and_hierarchies)
from .recipe import Recipe
from .store import CheckpointMissing, read_record

__all__ = ["Recipe", "RECIPES", "ALIASES", "SEEDS_FOLDER", "FIRST_STEPS", "FIRST_STEPS_RTOL",
           "recipes", "canonical", "load", "train", "done", "seed_path", "load_seed", "load_run",
           "ship_seed",
           "write_seed_result", "seed_result", "seed_results", "first_steps", "stale_first_steps",
           "record", "seed_metrics", "verify", "table", "seeds_table", "readme", "main"]

#: Where the weights of seeds other than 0 go, beside the records (not shipped).
SEEDS_FOLDER = store.SEEDS_FOLDER
#: Optimisation steps stored in a record by :func:`first_steps`, and their relative tolerance.
FIRST_STEPS, FIRST_STEPS_RTOL = 4, 1e-4

#: Every checkpoint of the course, by name: the chapters' tables, merged explicitly.
RECIPES: dict[str, Recipe] = {
    **ch05_first_vae.RECIPES,
    **ch06_latent_space.RECIPES,
    **ch07_beta.RECIPES,
    **ch08_residual_vae.RECIPES,
    **ch09_vae_vs_gan.RECIPES,
    **ch10_mmd_vae.RECIPES,
    **ch11_evaluation.RECIPES,
    **ch12_disentanglement.RECIPES,
    **ch13_posterior_collapse.RECIPES,
    **ch14_inference_gaps.RECIPES,
    **ch15_conditional_vae.RECIPES,
    **ch16_vq_vae.RECIPES,
    **ch17_latent_diffusion.RECIPES,
    **ch18_priors_and_hierarchies.RECIPES,
}

#: The checkpoint names of release 0.1 (deprecated in 0.2; removed in the release after it).
ALIASES = {
    "mnist-mlp-bernoulli": "mnist-mlp-bernoulli-z20-e30",
    "mnist-mlp-bernoulli-e10": "mnist-mlp-bernoulli-z20-e10",
    "mnist-mlp-bernoulli-pixelmean-e10": "mnist-mlp-bernoulli-pixelmean-z20-e10",
    "mnist-mlp-normal-unitvar-e10": "mnist-mlp-normal-unitvar-z20-e10",
    "mnist-mlp-normal-learnedvar-e10": "mnist-mlp-normal-learnedvar-z20-e10",
    "mnist-conv-bernoulli-e10": "mnist-conv-bernoulli-z20-e10",
    "mnist-mlp-beta-0.1": "mnist-mlp-bernoulli-z20-beta0.1-e30",
    "mnist-mlp-beta-0.5": "mnist-mlp-bernoulli-z20-beta0.5-e30",
    "mnist-mlp-beta-2": "mnist-mlp-bernoulli-z20-beta2-e30",
    "mnist-mlp-beta-10": "mnist-mlp-bernoulli-z20-beta10-e30",
    "mnist-mlp-latent1": "mnist-mlp-bernoulli-z1-e30",
    "mnist-mlp-latent2": "mnist-mlp-bernoulli-z2-e30",
    "mnist-mlp-latent50": "mnist-mlp-bernoulli-z50-e30",
    "mnist-mlp-latent50-warmup": "mnist-mlp-bernoulli-warmup-z50-e30",
    "mnist-mlp-noise": "mnist-mlp-bernoulli-noise-z20-e30",
    "mnist-mlp-flow": "mnist-mlp-bernoulli-flow-z20-e30",
    "mnist-mlp-iwae-k5": "mnist-mlp-bernoulli-iwae-k5-z20-e30",
    "mnist-mlp-fixed-binarization": "mnist-mlp-bernoulli-fixedbin-z20-e30",
    "mnist-mlp2-flow-iwae-k5": "mnist-mlp2-bernoulli-flow-iwae-k5-z50-e50",
    "mnist32-lenet": "mnist32-lenet-classifier-e3",
    "mnist32-mlp-vae-z100": "mnist32-mlp-bernoulli-z100-e20",
    "mnist32-mlp-gan-z100": "mnist32-mlp-gan-z100-e20",
    "mnist32-mlp-gan-z100-smooth": "mnist32-mlp-gan-smooth-z100-e20",
    "cifar-bh-resnet-beta0.01": "cifar-bh-resnet-bernoulli-z64-beta0.01-e15",
    "cifar-bh-resnet-beta1": "cifar-bh-resnet-bernoulli-z64-e15",
    "cifar-bh-conv-beta1": "cifar-bh-conv-bernoulli-z64-e15",
    "cifar-bh-classifier": "cifar-bh-cnn-classifier-e8",
    "shapes-classifier": "shapes-cnn-classifier-e8",
    "shapes-mlp-vae": "shapes-mlp-bernoulli-z8-e50",
    "shapes-mlp-mmd": "shapes-mlp-bernoulli-mmd-z8-e50",
    "shapes-mlp-mmd-noise": "shapes-mlp-bernoulli-mmd-noise-z8-e50",
    "shapes-mlp-mmd-noise-unitscale": "shapes-mlp-bernoulli-mmd-noise-unitscale-z8-e50",
}


def recipes() -> dict[str, Recipe]:
    """All recipes, by checkpoint name (:data:`RECIPES`)."""
    return RECIPES


def canonical(name: str) -> str:
    """``name``, or the current name of a deprecated one (with a DeprecationWarning)."""
    if name in ALIASES:
        warnings.warn(f"checkpoint name {name!r} is deprecated: use {ALIASES[name]!r}",
                      DeprecationWarning, stacklevel=3)
        return ALIASES[name]
    return name


def _recipe(name: str) -> Recipe:
    table_ = recipes()
    if name not in table_:
        raise ValueError(f"unknown checkpoint {name!r}; expected one of {sorted(table_)}")
    return table_[name]


def load(name: str, *, train_if_missing: bool = True, directory=None, device=None):
    """Return ``(model, checkpoint)`` for ``name``, in eval mode, on ``device``.

    ``device``: default ``$VAECORE_DEVICE``, else the CPU (chapters pass CPU
    tensors; :func:`vaecore.device.default_device`); the weights are mapped
    straight there.

    The weights are found as :mod:`vaecourse.store` says (``directory``, then
    ``$VAECORE_CHECKPOINT_DIR``, the checkout's ``checkpoints/``, the user
    cache, a download). Their size and sha256 are compared with the record
    ``NAME.json`` before loading: a file that differs raises ValueError, and
    a file without a record raises FileNotFoundError (neither is loaded).
    When the checkpoint exists nowhere, it is trained first if
    ``train_if_missing`` (this can take minutes), else FileNotFoundError.
    Building the model leaves the caller's global random stream untouched.
    """
    name = canonical(name)
    recipe = _recipe(name)
    try:
        store.weights_path(name, directory)
    except CheckpointMissing as missing:
        if not train_if_missing:
            raise FileNotFoundError(f"{missing}; python -m vaecourse.zoo train {name}") from None
        train(name, directory=directory)
    device = default_device(device, fallback="cpu")
    model = recipe.build().to(device)
    checkpoint = store.load_weights(name, model, directory, map_location=device)
    return model.eval(), checkpoint


def _write_folder(directory) -> Path:
    """Where :func:`train` writes: ``directory``, else ``$VAECORE_CHECKPOINT_DIR``, the checkout, the cache."""
    folders = store._folders(directory)
    return folders[0]


def _paths(folder: Path, name: str, seed: int) -> tuple[Path, Path]:
    """The weights and partial checkpoint of ``name`` at ``seed``: seed 0 is the shipped run."""
    if seed == 0:
        return folder / f"{name}.pt", folder / f"{name}.partial.pt"
    return folder / SEEDS_FOLDER / f"{name}.seed{seed}.pt", \
        folder / SEEDS_FOLDER / f"{name}.seed{seed}.partial.pt"


def _command(name: str, seed: int) -> str:
    return f"python -m vaecourse.zoo train {name}" + (f" --seed {seed}" if seed else "")


def _weights_from(recipe: Recipe, directory) -> dict:
    """The trainer option naming where a recipe's required checkpoints are (none without)."""
    return {"weights_from": directory} if recipe.requires and directory is not None else {}


def first_steps(name: str, seed: int = 0, steps: int = FIRST_STEPS,
                directory=None) -> dict[str, list[float]]:
    """The training losses of the first ``steps`` optimisation steps of recipe ``name`` at ``seed``.

    The recipe's own model, loss, trainer and options, on the first batch of
    its training data (``batch_size`` examples) seen ``steps`` times, one
    epoch each, without callbacks: every field of the per-step training
    metrics, as floats (``directory``: where the checkpoints the recipe requires are,
    else where checkpoints are found). Any change to a recipe's arithmetic (initialisation,
    data, transform, loss, optimizer, learning rate) changes them, so a
    record stores them and a test compares them with the current code
    (:data:`FIRST_STEPS_RTOL`; bit-exact values differ across CPUs).
    """
    name = canonical(name)
    recipe = _recipe(name)
    train_data, _ = recipe.data()
    n = recipe.fit_options.get("batch_size", 128)
    batch = tuple(t[:n] for t in train_data) if isinstance(train_data, tuple) else train_data[:n]
    model = recipe.build(seed=seed)
    if hasattr(recipe.loss, "start"):
        recipe.loss.start(0)
    with torch.random.fork_rng(devices=[]):
        history = recipe.trainer(model, recipe.loss, batch, val=None, epochs=steps,
                                 seed=recipe.seed + seed, progress=False, **recipe.fit_options,
                                 **_weights_from(recipe, directory))
    return {field: [float(v) for v in values] for field, values in history.train.items()}


def stale_first_steps(recorded: dict, current: dict, rtol: float = None) -> list[str]:
    """The fields whose recorded first-step losses differ from ``current`` beyond ``rtol``."""
    rtol = FIRST_STEPS_RTOL if rtol is None else rtol
    if set(recorded) != set(current):
        return [f"fields {sorted(recorded)} != {sorted(current)}"]
    return [f"{k}: recorded {recorded[k]}, now {current[k]}" for k in recorded
            if len(recorded[k]) != len(current[k])
            or not all(abs(a - b) <= rtol * max(abs(a), abs(b), 1e-12)
                       for a, b in zip(recorded[k], current[k]))]


def train(name: str, *, seed: int = 0, directory=None, progress: bool = True) -> Checkpoint:
    """Train recipe ``name`` at ``seed`` to its total number of epochs (resuming), evaluate, save, record.

    Seed 0 is the shipped run: ``NAME.pt`` and its record ``NAME.json``. A
    seed ``s > 0`` initialises the model with ``recipe.build(seed=s)`` and
    shuffles (and draws its noise) with ``recipe.seed + s``; its weights go
    to ``seeds/NAME.seed<s>.pt`` beside the record (not shipped) and its
    metrics, command and code version into the record's ``seeds`` list, which
    needs seed 0's record first (trained at the same code). Every record names
    the code version (:func:`vaecourse.provenance.code_version`) and stores
    :func:`first_steps`; writing into the checkout's ``checkpoints/`` from a
    modified tree is refused before training starts.

    On :func:`vaecore.device.default_device`: ``$VAECORE_DEVICE``, else CUDA,
    MPS or the CPU; the returned checkpoint is mapped there too. Under ``torchrun`` every rank
    trains (``fit`` splits each batch) and rank 0 alone evaluates and writes
    the checkpoint and its record; the others wait for it, then load it too.
    A partial checkpoint that already holds every epoch is evaluated and
    recorded without training further.
    """
    name = canonical(name)
    recipe = _recipe(name)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    folder = _write_folder(directory)
    code = (provenance.require_clean(f"the record of {name}")
            if folder.resolve() == store.CHECKOUT_DIR.resolve() else provenance.code_version())
    if seed:  # seed 0's record must exist (and match this code) before a seed is added to it
        _main_record_for_seed(folder, name)
    for needed in recipe.requires:
        if not (folder / f"{needed}.json").is_file() or (
                seed and not _paths(folder, needed, seed)[0].is_file()):
            raise FileNotFoundError(f"{name} starts from the weights of {needed} (seed {seed}), "
                                    f"which are not in {folder}: train them first with "
                                    f"{_command(needed, seed)}")
    final, partial = _paths(folder, name, seed)
    final.parent.mkdir(parents=True, exist_ok=True)
    device = default_device()
    distributed.init(device)  # under torchrun: join the group now, so barrier() waits
    main = distributed.is_main()
    if distributed.world_size() > 1 and getattr(recipe.trainer, "__name__", "") != "fit":
        raise ValueError(f"{name} trains with its own loop ({recipe.trainer.__name__}), which "
                         "does not split batches over processes: run it without torchrun")
    model, history, before = recipe.build(seed=seed).to(device), None, 0.0
    if partial.is_file():  # resume from the last finished epoch
        resumed = load_checkpoint(partial, model, map_location=device)
        history, before = resumed.history, sum(resumed.history.epoch_time)
        if progress and main:
            print(f"{name} (seed {seed}): resuming after epoch {len(history)}")
    start = time.perf_counter()
    # Epochs still to run: none when an interrupted run had already finished training.
    remaining = recipe.epochs - (len(history) if history else 0)
    if remaining > 0:
        if hasattr(recipe.loss, "start"):  # a scheduled loss continues where the run stopped
            recipe.loss.start(recipe.epochs - remaining)
        train_data, val_data = recipe.data()
        history = recipe.trainer(model, recipe.loss, train_data, val=val_data, epochs=recipe.epochs,
                                 seed=recipe.seed + seed, checkpoint=partial, history=history,
                                 callbacks=[make(model) for make in recipe.callbacks],
                                 progress=progress, **recipe.fit_options,
                                 **_weights_from(recipe, directory))
    wall = before + time.perf_counter() - start
    if not main:
        distributed.barrier()  # until rank 0 has written the checkpoint and its record
        return load_checkpoint(final, map_location=device)
    metrics = recipe.evaluate(model.eval())
    save_checkpoint(final, model, config={"recipe": name, "summary": recipe.summary, "seed": seed},
                    metrics=metrics, history=history)
    run = {"seed": seed, "command": _command(name, seed), "epochs": len(history),
           "train_wall_time_s": round(wall, 1), "threads": torch.get_num_threads(),
           "machine": _machine(device), "torch": torch.__version__, "vaecore": __version__,
           "code": code, "first_steps": first_steps(name, seed, directory=directory),
           "metrics": metrics}
    if seed:
        run["weights_sha256"] = file_sha256(final)  # ties later measurements to these weights
        _add_seed(folder, name, run)
    else:
        info = {"name": name, "file": final.name, "bytes": final.stat().st_size,
                "sha256": file_sha256(final), "summary": recipe.summary, **run,
                "seeds": _seeds_still_valid(folder, name)}
        _write_record(folder / f"{name}.json", info)
    partial.unlink(missing_ok=True)  # only now: until the record is written, it can resume
    distributed.barrier()  # the other ranks may read it now
    return load_checkpoint(final, map_location=device)


def seed_path(name: str, seed: int, directory=None) -> Path:
    """Where the unshipped weights of ``name`` at ``seed`` (> 0) are written: ``seeds/NAME.seed<s>.pt``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 1:
        raise ValueError(f"seed: expected an integer >= 1 (seed 0 is the shipped file), got {seed!r}")
    return _paths(_write_folder(directory), canonical(name), seed)[0]


def load_seed(name: str, seed: int, *, directory=None, device=None):
    """``(model, checkpoint)`` of seed ``seed`` (> 0), checked against its record.

    A seed whose record entry names a shipped file (:func:`ship_seed`) is
    found and verified like the shipped seed 0 (beside the record, else
    downloaded). Otherwise its weights are the unshipped
    ``seeds/NAME.seed<s>.pt`` trained on this machine, which must have the
    sha256 of the record's entry (``weights_sha256``): FileNotFoundError
    when they are not here (train them with ``python -m vaecourse.zoo train
    NAME --seed S``), ValueError when they differ.
    """
    name = canonical(name)
    seed_path(name, seed, directory)  # checks the seed
    path = store.seed_weights_path(name, seed, directory)
    device = default_device(device, fallback="cpu")
    model = _recipe(name).build(seed=seed).to(device)
    checkpoint = load_checkpoint(path, model, map_location=device)
    return model.eval(), checkpoint


def load_run(name: str, seed: int, *, directory=None, device=None):
    """``(model, checkpoint)`` of any seed: the shipped weights for seed 0 (never trained
    here: FileNotFoundError when missing), :func:`load_seed` for the others."""
    if seed == 0:
        return load(name, train_if_missing=False, directory=directory, device=device)
    return load_seed(name, seed, directory=directory, device=device)


def ship_seed(name: str, seed: int, directory=None) -> Path:
    """Ship the weights of seed ``seed`` (> 0) beside the record, for a chapter that shows two seeds.

    Copies the verified ``seeds/NAME.seed<s>.pt`` to ``NAME.seed<s>.pt``
    beside the record and adds ``file``, ``bytes`` and ``sha256`` to that
    seed's entry, so that :func:`load_seed` and :func:`verify` treat it as
    they treat seed 0. Returns the shipped file's path.
    """
    name = canonical(name)
    folder = _write_folder(directory)
    source = seed_path(name, seed, directory)
    with _record_lock(folder, name):
        info = read_record(folder / f"{name}.json")
        entry = next((r for r in info.get("seeds", []) if r["seed"] == seed), None)
        if entry is None or "weights_sha256" not in entry:
            raise ValueError(f"{name}: the record has no seed {seed} with weights_sha256")
        if not source.is_file() or file_sha256(source) != entry["weights_sha256"]:
            raise ValueError(f"{source}: missing or not the weights recorded for seed {seed}; "
                             f"retrain it: python -m vaecourse.zoo train {name} --seed {seed}")
        dest = folder / source.name
        with _atomic_file(dest) as f:
            f.write(source.read_bytes())
        entry.update({"file": dest.name, "bytes": dest.stat().st_size,
                      "sha256": entry["weights_sha256"]})
        _write_record(folder / f"{name}.json", info)
    return dest


def restore_seed(name: str, seed: int, directory=None, progress: bool = True) -> Path:
    """Retrain the missing weights of a recorded seed (> 0) and tie its record entry to them.

    Training is deterministic on one machine type, but a checkpoint file also holds the
    run's wall times, so retrained weights never have the recorded file's sha256. The
    seed is retrained in a scratch folder from the record's command; it must reproduce the
    recorded first steps and every recorded test metric exactly, else ValueError and the
    record is left as it was. Then its file goes to ``seeds/NAME.seed<s>.pt``, and the
    entry's ``weights_sha256`` and the sha256 of every result stored with the old file
    (:func:`write_seed_result`) become the new file's; the entry keeps the old sha256, the
    restoring command and its code version under ``"restored"``. Returns the file's path.
    """
    name = canonical(name)
    folder = _write_folder(directory)
    target = seed_path(name, seed, directory)
    info = read_record(folder / f"{name}.json")
    entry = next((r for r in info.get("seeds", []) if r["seed"] == seed), None)
    if entry is None or "weights_sha256" not in entry:
        raise ValueError(f"{name}: the record has no seed {seed} with weights_sha256")
    if target.is_file() and file_sha256(target) == entry["weights_sha256"]:
        return target  # nothing to restore
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for needed in (name, *_recipe(name).requires):
            for path in (folder / f"{needed}.json", _paths(folder, needed, 0)[0],
                         *([_paths(folder, needed, seed)[0]] if needed != name else [])):
                dest = scratch / path.relative_to(folder)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dest)
        train(name, seed=seed, directory=scratch, progress=progress)
        made = next(r for r in read_record(scratch / f"{name}.json")["seeds"]
                    if r["seed"] == seed)
        made = {**made, "metrics": {k: made["metrics"].get(k) for k in entry["metrics"]}}
        differ = [key for key in ("first_steps", "metrics", "epochs") if made[key] != entry[key]]
        if differ:
            raise ValueError(f"{name} (seed {seed}): the retrained run differs from the record "
                             f"in {', '.join(differ)} (recorded {[entry[k] for k in differ]}, "
                             f"now {[made[k] for k in differ]}); the record is unchanged")
        with _atomic_file(target) as f:
            f.write(_paths(scratch, name, seed)[0].read_bytes())
    with _record_lock(folder, name):
        info = read_record(folder / f"{name}.json")
        entry = next(r for r in info["seeds"] if r["seed"] == seed)
        old = entry["weights_sha256"]
        entry["weights_sha256"] = made["weights_sha256"]
        for value in entry.values():
            if isinstance(value, dict) and value.get("sha256") == old:
                value["sha256"] = made["weights_sha256"]
        entry["restored"] = {"command": f"python -m vaecourse.zoo restore {name} --seed {seed}",
                             "original_weights_sha256": old, "code": made["code"],
                             "train_wall_time_s": made["train_wall_time_s"],
                             "check": "first steps, epochs and every test metric equal to "
                                      "the recorded run's"}
        _write_record(folder / f"{name}.json", info)
    return target


def write_seed_result(name: str, seed: int, key: str, result: dict, directory=None) -> dict:
    """Store ``result`` under ``key`` in the record's entry for ``seed`` (e.g. an NLL); return the record.

    Tied to the seed's weights by their sha256; written atomically under the
    record's lock. Seed 0, the shipped run, keeps such results in the record's
    ``"seed0"`` entry, apart from its headline results (e.g. an NLL with the
    seeds' k beside the shipped seed's NLL with a larger k).
    """
    name = canonical(name)
    folder = _write_folder(directory)
    with _record_lock(folder, name):
        info = read_record(folder / f"{name}.json")
        if seed == 0:
            info.setdefault("seed0", {})[key] = {**result, "sha256": info["sha256"]}
        else:
            entry = next((r for r in info.get("seeds", []) if r["seed"] == seed), None)
            if entry is None or "weights_sha256" not in entry:
                raise ValueError(f"{name}: the record has no seed {seed} with weights_sha256")
            entry[key] = {**result, "sha256": entry["weights_sha256"]}
        _write_record(folder / f"{name}.json", info)
    return info


def _seed_entries(info: dict) -> list[tuple[int, dict, str | None]]:
    """``(seed, entry holding its stored results, sha256 of its weights)`` for every seed of a record."""
    return [(0, info.get("seed0", {}), info["sha256"]),
            *((r["seed"], r, r.get("weights_sha256")) for r in info.get("seeds", []))]


def seed_results(name: str, key: str, directory=None) -> dict[int, dict]:
    """``{seed: result}`` stored under ``key`` by :func:`write_seed_result` for seed 0 and every seed.

    KeyError naming the seeds that lack it; ValueError when a result was
    measured on other weights than the ones the record names now (its sha256).
    """
    runs = _seed_entries(record(name, directory))
    missing = [seed for seed, entry, _ in runs if key not in entry]
    if missing:
        raise KeyError(f"{name}: seeds {missing} have no {key!r} result; "
                       f"measure it while their weights are here")
    stale = [seed for seed, entry, sha in runs if entry[key].get("sha256") != sha]
    if stale:
        raise ValueError(f"{name}: the {key!r} results of seeds {stale} were measured on other "
                         f"weights than the record's; measure them again")
    return {seed: entry[key] for seed, entry, _ in runs}


def seed_result(name: str, key: str, seed: int = 0, directory=None) -> dict:
    """The result stored under ``key`` by :func:`write_seed_result` for one ``seed``.

    For a measurement made on some seeds only (seed 0's shipped weights, say,
    when the other seeds' weights are no longer here). KeyError when that seed
    has no such result; ValueError when it was measured on other weights than
    the record's (its sha256).
    """
    found = [(entry, sha) for s, entry, sha in _seed_entries(record(name, directory))
             if s == seed]
    if not found:
        raise KeyError(f"{name}: the record has no seed {seed}")
    entry, sha = found[0]
    if key not in entry:
        raise KeyError(f"{name}: seed {seed} has no {key!r} result; measure it while its "
                       f"weights are here")
    if entry[key].get("sha256") != sha:
        raise ValueError(f"{name}: the {key!r} result of seed {seed} was measured on other "
                         f"weights than the record's; measure it again")
    return entry[key]


def _write_record(path: Path, info: dict) -> None:
    with _atomic_file(path) as f:  # never a half-written record
        f.write((json.dumps(info, indent=2) + "\n").encode())


def _main_record_for_seed(folder: Path, name: str) -> dict:
    path = folder / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: train seed 0 first "
                                f"(python -m vaecourse.zoo train {name}), then the other seeds")
    info = read_record(path)
    stale = stale_first_steps(info.get("first_steps", {}), first_steps(name, 0, directory=folder))
    if stale:
        raise RuntimeError(f"{path} was trained by a different recipe than today's "
                           f"({'; '.join(stale)}): retrain seed 0 first")
    return info


def _add_seed(folder: Path, name: str, run: dict) -> None:
    """Put ``run`` into the ``seeds`` list of ``name``'s record (replacing that seed's entry)."""
    with _record_lock(folder, name):
        info = _main_record_for_seed(folder, name)
        info["seeds"] = sorted([r for r in info.get("seeds", []) if r["seed"] != run["seed"]]
                               + [run], key=lambda r: r["seed"])
        _write_record(folder / f"{name}.json", info)


def _seeds_still_valid(folder: Path, name: str) -> list[dict]:
    """The seeds of the existing record whose first steps today's recipe reproduces (kept on a retrain)."""
    path = folder / f"{name}.json"
    try:
        old = read_record(path).get("seeds", []) if path.is_file() else []
    except ValueError:
        return []
    return [r for r in old if "first_steps" in r
            and not stale_first_steps(r["first_steps"],
                                      first_steps(name, r["seed"], directory=folder))]


class _record_lock:
    """An exclusive lock on ``NAME.json.lock`` while a seed is added (POSIX; no-op elsewhere)."""

    def __init__(self, folder: Path, name: str):
        self.path = folder / SEEDS_FOLDER / f"{name}.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a")
        if fcntl is not None:
            fcntl.flock(self.file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.file.close()  # releases the lock


def record(name: str, directory=None) -> dict:
    """The record of checkpoint ``name`` (an old name is accepted, with a warning)."""
    return store.record(canonical(name), directory)


def seed_metrics(name: str, metric, directory=None) -> dict[int, float]:
    """``{seed: value}`` of test ``metric`` for seed 0 and every recorded seed of ``name``.

    ``metric``: the name of a recorded metric, or a function of a run's
    metrics dict (e.g. ``lambda m: m["test_kl"] - m["test_log_likelihood"]``).
    KeyError naming the seeds that lack it when a run's record has no such metric.
    """
    info = record(name, directory)
    runs = [{"seed": info.get("seed", 0), "metrics": info["metrics"]}, *info.get("seeds", [])]
    if callable(metric):
        return {r["seed"]: float(metric(r["metrics"])) for r in runs}
    missing = [r["seed"] for r in runs if metric not in r["metrics"]]
    if missing:
        raise KeyError(f"{name}: seeds {missing} have no metric {metric!r}; "
                       f"recorded: {sorted(info['metrics'])}")
    return {r["seed"]: float(r["metrics"][metric]) for r in runs}


def _machine(device: torch.device) -> str:
    """What trained it, for the record: "x86_64 CPU", the GPU's name; the process count."""
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"  # not run here
            else "Apple MPS" if device.type == "mps" else f"{platform.machine()} CPU")
    world = distributed.world_size()
    return name if world == 1 else f"{world} x {name} (torchrun)"


def _shipped_problem(folder: Path, name: str, run: dict) -> str | None:
    path = folder / run["file"]
    if not path.is_file():
        return f"{name}: {path.name} is missing"
    if file_sha256(path) != run["sha256"] or path.stat().st_size != run["bytes"]:
        return f"{name}: {path.name} does not match its recorded sha256/size"
    return None


def verify(directory=None) -> list[str]:
    """Problems with the checkpoints in ``directory`` (default: the checkout's); [] when all is well.

    An unreadable or incomplete record is reported as a problem, not raised.
    Each seed a record lists is checked too: one with shipped weights like the
    main file; one whose weights are not shipped (metrics only) needs no file.
    """
    folder = Path(directory) if directory is not None else store.CHECKOUT_DIR
    problems = []
    for meta in sorted(folder.glob("*.json")):
        try:
            info = read_record(meta)
        except ValueError as e:
            problems.append(f"{meta.stem}: {e}")
            continue
        runs = [info] + [run for run in info.get("seeds", []) if "file" in run]
        problems += [p for run in runs if (p := _shipped_problem(folder, info["name"], run))]
    return problems


def table(directory=None) -> str:
    """A Markdown table of every checkpoint in ``directory`` and its record (ValueError for a bad one)."""
    folder = Path(directory) if directory is not None else store.CHECKOUT_DIR
    rows = ["| checkpoint | what | epochs | train time | test metrics | size | sha256 |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for meta in sorted(folder.glob("*.json")):
        i = read_record(meta)
        metrics = ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in i["metrics"].items())
        if "nll" in i and i["nll"]["sha256"] == i["sha256"]:  # from benchmarks/nll.py
            metrics += f"; **test NLL {i['nll']['nll']:.2f}** (k = {i['nll']['k']:,})"
        if i.get("seeds"):
            shipped = sum("file" in run for run in i["seeds"])
            metrics += f"; {len(i['seeds'])} more seeds recorded ({shipped} with weights)"
        rows.append(f"| `{i['name']}` | {i['summary']} | {i['epochs']} | "
                    f"{i['train_wall_time_s'] / 60:.1f} min ({i['threads']} thread"
                    f"{'s' if i['threads'] > 1 else ''}, {i['machine']}) | "
                    f"{metrics} | {i['bytes'] / 2**20:.1f} MiB | `{i['sha256'][:12]}…` |")
    return "\n".join(rows)


README_HEADER = """# Model zoo

Every checkpoint the chapters load, generated by `python -m vaecourse.zoo readme`
from the records written at training time. Each one is reproduced by
`python -m vaecourse.zoo train NAME`; `python -m vaecourse.zoo verify` checks the
files against their sha256. Names follow one scheme,
`<data>-<net>-<kind>[-<variant>…][-z<latent size>][-beta<β>]-e<epochs>`; the names of
release 0.1 still load in release 0.2, with a warning. Metrics are on held-out
data as the recipe states (MNIST: the 10,000 test images, binarized once with a fixed
seed, one sample of z per image, nats per image; the test NLL is the importance-sampled
estimate of `benchmarks/nll.py`, with k samples per image). Train times are wall-clock
on the machine named, with one thread; they vary with the machine's load. Outside a
checkout, the files are downloaded from the release's tag in the repository into
`~/.cache/vaecore/checkpoints/v<version>` and checked against these sha256 before they
are loaded.

"""


SEEDS_HEADER = """
## Every seed

Comparisons in the chapters are trained with several seeds (another initialisation and
data order each: `python -m vaecourse.zoo train NAME --seeds 0,1,2`). Seed 0's weights are
the shipped file; the other seeds' metrics are recorded in the same `NAME.json` (its
`seeds` list, each with its command and the commit that produced it). Mean ± sample
standard deviation over seeds; nats per image unless the metric says otherwise.

"""


def _number(v: float, digits: int = 4) -> str:
    """Counts without decimals; other values with ``digits`` significant digits, at least 2 decimals."""
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.{max(2, digits - len(str(int(abs(v)))))}f}" if abs(v) >= 1 else f"{v:.{digits}g}"


def seeds_table(directory=None) -> str:
    """A Markdown table of every recorded seed's test metrics, for records with more than one seed."""
    folder = Path(directory) if directory is not None else store.CHECKOUT_DIR
    rows = ["| checkpoint | metric | per seed (seed: value) | mean ± sd |", "| --- | --- | --- | --- |"]
    for meta in sorted(folder.glob("*.json")):
        info = read_record(meta)
        if not info.get("seeds"):
            continue
        runs = [{"seed": info.get("seed", 0), "metrics": info["metrics"]}, *info["seeds"]]
        for metric, value in info["metrics"].items():
            if not isinstance(value, (int, float)) or not all(metric in r["metrics"] for r in runs):
                continue
            values = [float(r["metrics"][metric]) for r in runs]
            rows.append(_seed_row(info["name"], metric, [r["seed"] for r in runs], values))
        rows.extend(_seed_nll_row(info))
    return "\n".join(rows) if len(rows) > 2 else ""


def _seed_nll_row(info: dict) -> list[str]:
    """The row of every seed's stored test NLL (``benchmarks/nll.py --seed-runs``), when all have one at one k."""
    runs = [info.get("seed0", {}), *info["seeds"]]
    results = [r.get("nll") for r in runs]
    if any(r is None for r in results) or len({r["k"] for r in results}) != 1:
        return []
    seeds = [info.get("seed", 0)] + [r["seed"] for r in info["seeds"]]
    return [_seed_row(info["name"], f"test NLL, k = {results[0]['k']:,}", seeds,
                      [float(r["nll"]) for r in results])]


def _seed_row(name: str, metric: str, seeds: list[int], values: list[float]) -> str:
    """One row of the seeds table: each seed's value, then mean ± sample standard deviation."""
    mean = math.fsum(values) / len(values)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
    per_seed = ", ".join(f"{s}: {_number(v)}" for s, v in zip(seeds, values))
    return f"| `{name}` | {metric} | {per_seed} | {_number(mean, 2)} ± {_number(sd, 2)} |"


def readme(directory=None) -> str:
    """The text of ``checkpoints/README.md``: a header, :func:`table` and :func:`seeds_table`."""
    seeds = seeds_table(directory)
    return README_HEADER + table(directory) + "\n" + (SEEDS_HEADER + seeds + "\n" if seeds else "")


def done(name: str, seed: int = 0, directory=None) -> bool:
    """Whether ``name`` at ``seed`` is recorded in the write folder by today's recipe (same first steps)."""
    name = canonical(name)
    path = _write_folder(directory) / f"{name}.json"
    try:
        info = read_record(path)
    except (OSError, ValueError):
        return False
    runs = [info] if seed == 0 else [r for r in info.get("seeds", []) if r["seed"] == seed]
    return bool(runs) and "first_steps" in runs[0] and info.get("seed", 0) == 0 and not \
        stale_first_steps(runs[0]["first_steps"], first_steps(name, seed, directory=path.parent))


def _train_arguments(args: list[str]) -> tuple[list[str], list[int], bool]:
    """``NAME [NAME ...] [--seeds 0,1,2 | --seed S] [--missing]`` → (names, seeds, missing only)."""
    names, seeds, missing = [], [0], False
    it = iter(args)
    for arg in it:
        if arg == "--missing":
            missing = True
        elif arg in ("--seed", "--seeds"):
            value = next(it, "")
            try:
                seeds = [int(s) for s in value.split(",")]
            except ValueError:
                sys.exit(f"train: {arg} expects integers >= 0 separated by commas, got {value!r}")
            if not seeds or min(seeds) < 0:
                sys.exit(f"train: {arg} expects integers >= 0, got {value!r}")
        else:
            names.append(arg)
    if not names:
        sys.exit("train: name at least one checkpoint")
    return names, seeds, missing


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in ("list", "train", "ship", "restore", "verify", "table",
                                   "readme"):
        print(__doc__)
        return 2
    if argv[0] == "list":
        for name, r in sorted(recipes().items()):
            print(f"{name}: {r.summary}")
    elif argv[0] == "train":
        names, seeds, missing = _train_arguments(argv[1:])
        for name in names:
            for seed in seeds:
                if missing and done(name, seed):
                    print(f"{name} (seed {seed}): recorded by today's recipe; skipped")
                    continue
                start = time.perf_counter()
                ckpt = train(name, seed=seed)
                print(f"{name} (seed {seed}): {ckpt.metrics} "
                      f"(wall time: {time.perf_counter() - start:.0f} s)")
    elif argv[0] == "ship":
        names, seeds, _ = _train_arguments(argv[1:])
        for name in names:
            for seed in seeds:
                print(f"{name} (seed {seed}): shipped as {ship_seed(name, seed)}")
    elif argv[0] == "restore":
        names, seeds, _ = _train_arguments(argv[1:])
        for name in names:
            for seed in seeds:
                print(f"{name} (seed {seed}): restored as {restore_seed(name, seed)}")
    elif argv[0] == "verify":
        problems = verify()
        print("\n".join(problems) or "all checkpoints match their records")
        return 1 if problems else 0
    elif argv[0] == "table":
        print(table())
    else:
        with _atomic_file(store.CHECKOUT_DIR / "README.md") as f:
            f.write(readme().encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
