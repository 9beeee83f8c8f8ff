"""Where the course's checkpoints are found: by name, like datasets, and always verified.

A checkpoint ``NAME`` is two files: its record ``NAME.json`` (what it is, the
command that made it, its metrics, the size and sha256 of its weights) and
its weights ``NAME.pt``. Lookup order, the first match wins:

1. the ``directory=`` argument (then nothing else is tried, and nothing is
   downloaded: an explicit folder is a local choice);
2. the folder named by ``$VAECORE_CHECKPOINT_DIR``;
3. the ``checkpoints/`` folder of the course's checkout, when the package is
   installed from one (editable installs, a clone);
4. the user cache ``$XDG_CACHE_HOME/vaecore/checkpoints/<CHECKPOINT_REF>`` (``~/.cache/...``),
   where downloads go: ``{REPOSITORY_URL}/raw/{CHECKPOINT_REF}/checkpoints/NAME``.

What is trusted: a record found on disk is trusted as it is; a record that is
downloaded is trusted as the repository's (HTTPS from ``REPOSITORY_URL``)
and checked for its keys. Weights are never trusted: wherever they come from
(disk or download) their size and sha256 must equal the record's before they
are loaded, and a download that does not match is refused and not kept.
A record may also list ``seeds``: further runs of the recipe whose metrics
are recorded, with or without shipped weights (see :func:`read_record`).
"""
from __future__ import annotations

import json
import urllib.error
from pathlib import Path

from vaecore import fetch
from vaecore.checkpoint import Checkpoint, file_sha256, load_checkpoint

from . import CHECKPOINT_REF, REPOSITORY_URL

__all__ = ["ENV_VAR", "CHECKOUT_DIR", "RECORD_KEYS", "CheckpointMissing", "cache_dir", "url",
           "read_record", "record_path", "record", "weights_path", "load_weights"]

ENV_VAR = "VAECORE_CHECKPOINT_DIR"
CHECKOUT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"

# What a record holds, and the types the zoo relies on.
RECORD_KEYS = {"name": str, "file": str, "bytes": int, "sha256": str, "command": str,
               "summary": str, "epochs": int, "train_wall_time_s": (int, float),
               "threads": int, "machine": str, "torch": str, "vaecore": str, "metrics": dict}
SEED_KEYS = {"seed": int, "metrics": dict}
SHIPPED_SEED_KEYS = {"file": str, "bytes": int, "sha256": str}
# Field names of earlier releases, as stored in shipped histories and metrics.
LEGACY_KEYS = {"reconstruction": "log_likelihood", "test_reconstruction": "test_log_likelihood"}


class CheckpointMissing(FileNotFoundError):
    """Neither the record nor the weights of a checkpoint exist anywhere in the lookup order."""


def cache_dir() -> Path:
    """Where downloaded checkpoints are kept, one folder per release:
    ``$XDG_CACHE_HOME/vaecore/checkpoints/<CHECKPOINT_REF>``."""
    return fetch.user_cache_dir("checkpoints", CHECKPOINT_REF)


def _bare(what: str, filename) -> str:
    """``filename`` if it is a plain file name (no folder, no ``..``); else ValueError.

    Names and the ``file`` of records become paths in the cache and URLs in the
    repository, so neither may point anywhere else.
    """
    if (not isinstance(filename, str) or not filename or filename in (".", "..")
            or "\\" in filename or Path(filename).name != filename):
        raise ValueError(f"{what}: expected a plain file name (no folder, no '..'), "
                         f"got {filename!r}")
    return filename


def url(filename: str) -> str:
    """The download URL of ``checkpoints/<filename>`` in the course's repository."""
    return f"{REPOSITORY_URL}/raw/{CHECKPOINT_REF}/checkpoints/{filename}"


def _folders(directory) -> list[Path]:
    if directory is not None:
        return fetch.search_folders(directory)
    return [*fetch.search_folders(env_var=ENV_VAR, checkout=CHECKOUT_DIR), cache_dir()]


def _renamed(d: dict) -> dict:
    return {LEGACY_KEYS.get(k, k): v for k, v in d.items()}


def _wrong_keys(d, keys: dict) -> list[str]:
    return [k for k, kind in keys.items()
            if not isinstance(d.get(k), kind) or isinstance(d.get(k), bool)]


def read_record(path: Path) -> dict:
    """The record at ``path``; ValueError naming the file unless it has ``RECORD_KEYS``.

    Optional ``"seeds"``: a list of ``{"seed", "metrics"}`` objects, each with
    ``"file"``, ``"bytes"`` and ``"sha256"`` when that run's weights are
    shipped and without them (metrics only) when they are not. Metric names
    of earlier releases are given their current names (``LEGACY_KEYS``).
    """
    expected = f"expected a JSON object with keys {', '.join(RECORD_KEYS)}"
    try:
        info = json.loads(Path(path).read_text())
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{path} is not a readable record (empty or truncated?): {e}; "
                         f"{expected}. Re-train to rewrite it: "
                         f"python -m vaecourse.zoo train {Path(path).stem}") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: {expected}, got a JSON {type(info).__name__}")
    wrong = _wrong_keys(info, RECORD_KEYS)
    if wrong:
        raise ValueError(f"{path}: {expected}; missing or of the wrong type: {', '.join(wrong)}")
    seeds = info.get("seeds", [])
    if not isinstance(seeds, list):
        raise ValueError(f"{path}: seeds: expected a list of objects, got {type(seeds).__name__}")
    for i, run in enumerate(seeds):
        bad = _wrong_keys(run, SEED_KEYS) if isinstance(run, dict) else ["(not an object)"]
        shipped = isinstance(run, dict) and any(k in run for k in SHIPPED_SEED_KEYS)
        if not bad and shipped:
            bad = _wrong_keys(run, SHIPPED_SEED_KEYS)
        if bad:
            raise ValueError(f"{path}: seeds[{i}]: expected seed, metrics (and file, bytes, "
                             f"sha256 if its weights are shipped); wrong: {', '.join(bad)}")
        if "file" in run:
            _bare(f"{path}: seeds[{i}].file", run["file"])
        run["metrics"] = _renamed(run["metrics"])
    _bare(f"{path}: file", info["file"])
    info["metrics"] = _renamed(info["metrics"])
    return info


def record_path(name: str, directory=None, *, download: bool = True) -> Path:
    """The path of ``NAME.json`` in the lookup order, downloading it into the cache if need be.

    Raises :class:`CheckpointMissing` when no folder has it and it cannot be
    downloaded (``directory`` given, ``download=False``, or the download failed).
    """
    _bare("name", name)
    folders = _folders(directory)
    found = fetch.find(f"{name}.json", folders)
    if found is not None:
        return found
    if directory is None and download:
        try:
            return _download_record(name)
        except (OSError, urllib.error.URLError, ValueError) as e:
            raise CheckpointMissing(f"no record {name}.json in {', '.join(map(str, folders))}, "
                                    f"and its download from {url(name + '.json')} failed: {e}; "
                                    f"train it with: python -m vaecourse.zoo train {name}") from e
    raise CheckpointMissing(f"no record {name}.json in {', '.join(map(str, folders))}; "
                            f"train it with: python -m vaecourse.zoo train {name}")


def _download_record(name: str) -> Path:
    """Download ``NAME.json`` into the cache, keeping it only if it reads as a record."""
    dest = cache_dir() / f"{name}.json"
    tmp = fetch.download(url(f"{name}.json"), dest.with_name(f".{name}.json.download"))
    try:
        read_record(tmp)  # a captive portal's page is not kept as a record
    except ValueError:
        tmp.unlink(missing_ok=True)
        raise
    return tmp.replace(dest)


def record(name: str, directory=None) -> dict:
    """The record of ``name`` (see :func:`read_record`)."""
    return read_record(record_path(name, directory))


def _no_record(path: Path, name: str) -> FileNotFoundError:
    return FileNotFoundError(
        f"{path} has no record {path.with_suffix('.json')}, so it cannot be checked "
        f"against its sha256; restore the record with the file, or delete {path.name} "
        f"and re-train: python -m vaecourse.zoo train {name}")


def _mismatch(path: Path, info: dict, name: str, error: Exception, run=None) -> ValueError:
    run = info if run is None else run
    return ValueError(
        f"{path} does not match its record {info['name']}.json: expected {run['file']} of "
        f"{run['bytes']} bytes with sha256 {run['sha256']} ({error}). The file was changed or "
        f"damaged: restore it (e.g. git checkout the file, or delete it to download it "
        f"again) or re-train it: python -m vaecourse.zoo train {name}")


def weights_path(name: str, directory=None, *, download: bool = True, seed: int = 0) -> Path:
    """The verified path of ``name``'s weights: on disk beside its record, else downloaded.

    Size and sha256 are checked against the record before the path is
    returned: ValueError for a file that differs (it is not loaded, and a
    download that differs is not kept), FileNotFoundError for weights without
    a record, :class:`CheckpointMissing` when neither can be found. ``seed``
    > 0 asks for the weights of that seed, which only a seed whose record
    entry names a shipped file has (ValueError otherwise).
    """
    try:
        meta = record_path(name, directory, download=download)
    except CheckpointMissing:
        orphan = fetch.find(f"{name}.pt", _folders(directory))
        if orphan is not None and not seed:
            raise _no_record(orphan, name) from None
        raise
    info = read_record(meta)
    run = info if not seed else next((r for r in info.get("seeds", []) if r["seed"] == seed), {})
    if "file" not in run:
        shipped = [0] + [r["seed"] for r in info.get("seeds", []) if "file" in r]
        raise ValueError(f"{name}: the record ships no weights for seed {seed}; the shipped "
                         f"seeds are {shipped}")
    path = meta.parent / run["file"]
    if not path.is_file() and directory is None and download:
        path = cache_dir() / run["file"]
        if not path.is_file():
            try:
                fetch.download(url(run["file"]), path, sha256=run["sha256"], size=run["bytes"])
            except fetch.FileMismatchError as e:
                raise _mismatch(path, info, name, e, run) from e
            except (OSError, urllib.error.URLError) as e:
                raise CheckpointMissing(f"{run['file']} is in no folder and its download from "
                                        f"{url(run['file'])} failed: {e}") from e
    if not path.is_file():
        raise CheckpointMissing(f"{path} is missing; train it with: "
                                f"python -m vaecourse.zoo train {name}"
                                + (f" --seed {seed}" if seed else ""))
    try:
        if run["file"] != path.name:
            raise fetch.FileMismatchError(f"the record names {run['file']}")
        fetch.check_file(path, run["sha256"], run["bytes"])
    except fetch.FileMismatchError as e:
        raise _mismatch(path, info, name, e, run) from None
    return path


def load_weights(name: str, model, directory=None, map_location="cpu") -> Checkpoint:
    """Load ``name``'s verified weights into ``model``; return the checkpoint, current names.

    History and metric fields that earlier releases stored under other names
    (``LEGACY_KEYS``) are returned under their current ones.
    """
    ckpt = load_checkpoint(weights_path(name, directory), model, map_location=map_location)
    history = ckpt.history
    if history is not None:
        history.train, history.val = _renamed(history.train), _renamed(history.val)
    return ckpt._replace(metrics=_renamed(ckpt.metrics))


#: The folder, beside the records, of the weights of seeds other than 0.
SEEDS_FOLDER = "seeds"


def seed_weights_path(name: str, seed: int, directory=None) -> Path:
    """The verified path of ``name``'s weights at ``seed`` (> 0).

    A seed whose record entry names a shipped file is found and verified like
    seed 0 (:func:`weights_path`). Otherwise its weights are the unshipped
    ``seeds/NAME.seed<s>.pt`` beside the first folder searched, trained on this
    machine, which must have the sha256 of the record's entry
    (``weights_sha256``): FileNotFoundError when they are not there, ValueError
    when they differ.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 1:
        raise ValueError(f"seed: expected an integer >= 1 (seed 0 is the shipped file), "
                         f"got {seed!r}")
    info = record(name, directory)
    entry = next((r for r in info.get("seeds", []) if r["seed"] == seed), None)
    if entry is not None and "file" in entry:
        return weights_path(name, directory, seed=seed)
    command = f"python -m vaecourse.zoo train {name} --seed {seed}"
    if entry is None or "weights_sha256" not in entry:
        raise ValueError(f"{name}: the record has no seed {seed} with weights_sha256; "
                         f"retrain it: {command}")
    path = _folders(directory)[0] / SEEDS_FOLDER / f"{name}.seed{seed}.pt"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: seed {seed}'s weights are not shipped; train them "
                                f"with {command}")
    if file_sha256(path) != entry["weights_sha256"]:
        raise ValueError(f"{path} does not match the sha256 recorded for seed {seed}; "
                         f"retrain it: {command}")
    return path


def load_seed_weights(name: str, model, seed: int, directory=None,
                      map_location="cpu") -> Checkpoint:
    """Load ``name``'s verified weights at ``seed`` into ``model``: :func:`load_weights`
    for seed 0, :func:`seed_weights_path` for the others."""
    if seed == 0:
        return load_weights(name, model, directory, map_location)
    return load_checkpoint(seed_weights_path(name, seed, directory), model,
                           map_location=map_location)
