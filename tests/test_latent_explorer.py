"""The book's live latent-space explorer, checked against PyTorch.

- ``tools/export_explorer.py`` writes the decoder of the D = 2 model and the test
  codes; read back as the page reads them, the weights decode what PyTorch decodes,
  and the folder stays under 2 MB.
- In a headless Chromium, ``book/_static/latent-explorer.js`` moves the point to fixed
  positions and along both walks, and follows pointer events; what it decodes must
  equal the exported weights decoded in float64 (1e-9) and, with float32 weights, the
  PyTorch decoder's E[x | z] = sigmoid(logits) within 1e-5; the grey levels it draws
  must lie within 2/255 of 255 E[x | z] of PyTorch. The browser check skips when no
  Chromium is installed, unless VAECORE_REQUIRE_BROWSER=1, where that fails.
- ``tools/add_explorer_cell.py`` puts the explorer into chapter 6 once, touching
  no output.
"""
from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import nbformat
import numpy as np
import pytest
import torch

from _chromium import _QuietHandler as QuietHandler, browser_or_skip
from _tools import tool
from vaecore import latent
from vaecore.mlp import MLPDecoder

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "book" / "_static"
MODEL = "mnist-mlp-bernoulli-z2-e30"
FLOAT_TOL = 1e-5  # |E[x|z] page − E[x|z] PyTorch| with float32 weights
PIXEL_TOL = 2  # grey levels out of 255


export_explorer = tool("export_explorer")
add_explorer_cell = tool("add_explorer_cell")


def mnist_available() -> bool:
    from vaecore import data
    try:
        data.mnist("test", download=False)
    except Exception:  # DataNotFoundError, or files that fail their checks
        return False
    return True


class Export(NamedTuple):
    folder: Path  # explorer/NAME/{manifest.json, decoder.bin} for each NAME
    decoders: dict  # NAME → the PyTorch decoder that was exported


def torch_mean(decoder, z) -> np.ndarray:
    """E[x | z] = sigmoid(logits) of a Bernoulli decoder in PyTorch (float32): (B, pixels)."""
    z = torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)
    with torch.no_grad():
        return torch.sigmoid(decoder(z).flatten(1)).double().numpy()


def stored_mean(folder: Path, z) -> np.ndarray:
    """E[x | z] from the exported files, read as the page reads them, in float64: (B, pixels)."""
    return export_explorer.decode_numpy(stored_layers(folder)[1], np.atleast_2d(z))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Export:
    """The zoo's D = 2 model (weights as the export chooses) and a small D = 3 one in float16."""
    if not mnist_available():
        pytest.skip("MNIST not found (set VAECORE_DATA_DIR): the export encodes its test images")
    out = tmp_path_factory.mktemp("explorer")
    export_explorer.export_zoo_model(MODEL, out)
    torch.manual_seed(0)
    synthetic = MLPDecoder(3, (1, 6, 5), hidden=(7,)).eval()
    rng = np.random.default_rng(0)
    endpoints = [{"index": i, "label": i, "z": rng.normal(size=3) * 2} for i in range(3)]
    export_explorer.export(synthetic, "bernoulli", rng.normal(size=(50, 3)), rng.integers(0, 10, 50),
                           endpoints, out / "synthetic", title="a synthetic D = 3 decoder",
                           dtype="float16", image_shape=(6, 5))
    return Export(out, {MODEL: export_explorer.load_model(MODEL).decoder, "synthetic": synthetic})


def stored_layers(folder: Path):
    """The manifest, and the layers as the page reads them: its shapes over decoder.bin's numbers."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    numbers = np.fromfile(folder / manifest["weights"]["file"],
                          dtype=np.dtype(manifest["weights"]["dtype"]).newbyteorder("<"))
    layers, at = [], 0
    for layer in manifest["layers"]:
        w = numbers[at:at + layer["in"] * layer["out"]].reshape(layer["out"], layer["in"])
        at += w.size
        layers.append((w, numbers[at:at + layer["out"]], layer["activation"]))
        at += layer["out"]
    assert at == numbers.size, "decoder.bin holds more numbers than the layers need"
    return manifest, layers


def test_export_is_small_and_decodes_what_pytorch_decodes(exported):
    folder = exported.folder / MODEL
    size = export_explorer.folder_bytes(folder) + sum(
        p.stat().st_size for p in STATIC.glob("latent-explorer.*"))
    assert size < 2_000_000, f"the explorer adds {size:,} bytes to the page"
    manifest, _ = stored_layers(folder)
    assert manifest["latent_dim"] == 2 and manifest["image_shape"] == [28, 28]
    assert [(l["in"], l["out"], l["activation"]) for l in manifest["layers"]] == [
        (2, 400, "relu"), (400, 784, "sigmoid")]
    g = np.linspace(-4, 4, 33)
    z = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    gap = np.abs(stored_mean(folder, z) - torch_mean(exported.decoders[MODEL], z)).max()
    float32 = manifest["weights"]["dtype"] == "float32"
    limit = FLOAT_TOL if float32 else export_explorer.QUANTIZATION_BUDGET
    assert gap <= limit, f"stored {manifest['weights']['dtype']} weights: max |ΔE[x|z]| {gap:.2e}"
    codes = manifest["codes"]
    assert len(codes["points"]) == len(codes["labels"]) == export_explorer.N_CODES
    assert set(codes["labels"]) == set(range(10))
    assert [e["label"] for e in manifest["endpoints"]] == list(range(10))
    assert manifest["default_endpoints"] == [2, 7]


def test_float16_export_holds_the_rounded_weights_and_a_plane_for_three_dimensions(exported):
    manifest, layers = stored_layers(exported.folder / "synthetic")
    assert manifest["weights"]["dtype"] == "float16" and manifest["latent_dim"] == 3
    axes = np.array(manifest["plane"]["axes"])
    np.testing.assert_allclose(axes @ axes.T, np.eye(2), atol=1e-5)
    decoder = exported.decoders["synthetic"]
    for (w, b, _), (tw, tb, _) in zip(layers, export_explorer.dense_layers(decoder, "bernoulli")):
        np.testing.assert_array_equal(w, tw.numpy().astype(np.float16))
        np.testing.assert_array_equal(b, tb.numpy().astype(np.float16))
    z = np.random.default_rng(1).normal(size=(20, 3))
    gap = np.abs(stored_mean(exported.folder / "synthetic", z) - torch_mean(decoder, z)).max()
    assert gap < 1e-2


@pytest.fixture(scope="module")
def browser() -> str:
    return browser_or_skip("the page's decoder")


def run_page(browser: str, site: Path, query: str, tmp_path: Path) -> dict:
    """Serve ``site`` on 127.0.0.1, load the test page in headless Chromium, return its #result."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/harness.html?{query}"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-extensions", "--no-first-run", "--no-default-browser-check",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1200",
               "--virtual-time-budget=60000", "--dump-dom", url]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=180)
    finally:
        server.shutdown()
        server.server_close()
    found = re.search(r'<pre id="result">(.*?)</pre>', run.stdout, re.S)
    assert found and found.group(1) != "pending", (
        f"the test page wrote no result (exit {run.returncode}): {run.stderr[-3000:]}")
    result = json.loads(html.unescape(found.group(1)))
    assert "harness_error" not in result, result["harness_error"]
    return result


def check_decoded(decoded: dict, exported: Export, name: str, float32: bool, what: str):
    """The page's E[x|z] and grey levels at its z against the oracles; the two largest gaps.

    What the page computes equals the stored weights decoded in float64 (1e-9), and,
    with float32 weights, the PyTorch decoder (FLOAT_TOL); what it draws is within
    PIXEL_TOL grey levels of 255 times the PyTorch decoder's E[x | z].
    """
    want = torch_mean(exported.decoders[name], decoded["z"])[0]
    got, pixels = np.array(decoded["output"]), np.array(decoded["pixels"])
    assert got.shape == want.shape == pixels.shape, what
    assert (pixels >= 0).all(), f"{what}: a pixel is not an opaque grey"
    stored = stored_mean(exported.folder / name, decoded["z"])[0]
    np.testing.assert_allclose(got, stored, rtol=0, atol=1e-9, err_msg=what)
    float_gap, pixel_gap = np.abs(got - want).max(), np.abs(pixels - 255 * want).max()
    if float32:
        assert float_gap <= FLOAT_TOL, f"{what}: max |E[x|z] page − PyTorch| = {float_gap:.2e}"
    assert pixel_gap <= PIXEL_TOL, f"{what}: a grey level {pixel_gap:.2f} off 255·E[x|z] (> {PIXEL_TOL})"
    return float_gap, pixel_gap


def test_page_decoder_agrees_with_pytorch_in_a_browser(exported, browser, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for path in STATIC.glob("latent-explorer.*"):
        shutil.copy(path, site)
    shutil.copy(ROOT / "tests" / "latent_explorer_harness.html", site / "harness.html")
    shutil.copytree(exported.folder, site / "explorer")
    result = run_page(browser, site, f"models={MODEL},synthetic,missing", tmp_path)

    assert result["missing"]["state"] == "error", "a missing export must say so in the page"
    assert "tools/export_explorer.py" in result["missing"]["text"]
    gaps = {}
    for name in (MODEL, "synthetic"):
        page, manifest = result[name], stored_layers(exported.folder / name)[0]
        assert page["state"] == "ready", page
        float32 = manifest["weights"]["dtype"] == "float32"
        check = functools.partial(check_decoded, exported=exported, name=name, float32=float32)
        origin, axes = np.array(manifest["plane"]["origin"]), np.array(manifest["plane"]["axes"])
        # Fixed points of the plane: the latent code, what is decoded, what is drawn.
        for p in page["points"]:
            np.testing.assert_allclose(p["z"], origin + np.array(p["point"]) @ axes, atol=1e-12)
            gaps[f"{name} {p['point']}"] = check(p, what=f"{name} at {p['point']}")
        images = [np.array(p["pixels"]) for p in page["points"]]
        for a, b in zip(images, images[1:]):
            assert np.abs(a - b).mean() > 1, f"{name}: the image did not change as the point moved"
        # Both walks: the chapter's straight line and slerp (vaecore.latent.slerp), decoded.
        ends = manifest["endpoints"]
        for w in page["walks"]:
            z0, z1 = (torch.tensor([ends[i]["z"]], dtype=torch.float64) for i in (w["from"], w["to"]))
            np.testing.assert_allclose(w["linear"]["z"], torch.lerp(z0, z1, w["t"])[0], atol=1e-12)
            np.testing.assert_allclose(w["slerp"]["z"], latent.slerp(z0, z1, w["t"])[0],
                                       rtol=1e-9, atol=1e-9)
            for path in ("linear", "slerp"):
                check(w[path], what=f"{name}: {path} walk at t = {w['t']}")
        assert page["initial"]["walk"] == [*manifest["default_endpoints"], 0.5]
        # Pointer events: a move without a button does nothing; press, drag and release follow.
        drag = page["drag"]
        assert drag["before"]["point"] == [0, 0]
        np.testing.assert_allclose(drag["down"]["point"], [1, -1.5], atol=1e-6)
        np.testing.assert_allclose(drag["moved"]["point"], [-1.2, 2], atol=1e-6)
        assert drag["free"]["point"] == drag["up"]["point"]
        assert np.abs(np.array(drag["moved"]["pixels"]) - drag["down"]["pixels"]).mean() > 1
        check(drag["moved"], what=f"{name}: after dragging")
        np.testing.assert_allclose(page["key"]["point"], [-1.1, 2], atol=1e-9)
        first, second = manifest["default_endpoints"]
        assert page["controls"]["walk"] == [first, (second + 1) % len(ends), 0.25]
        check(page["controls"]["linear"], what=f"{name}: walk after the controls changed")
    print("max |E[x|z] page − PyTorch| and max grey-level gap at each fixed point:",
          {k: (f"{f:.1e}", f"{g:.2f}") for k, (f, g) in gaps.items()})


@pytest.fixture
def chapter_copy(tmp_path) -> Path:
    path = tmp_path / "06_latent_space.ipynb"
    shutil.copy(ROOT / "chapters" / "06_latent_space.ipynb", path)
    return path


def test_explorer_cell_is_inserted_once_and_touches_no_output(chapter_copy):
    before = nbformat.read(chapter_copy, as_version=4)  # with or without the cell already
    assert add_explorer_cell.main([str(chapter_copy)]) == 0
    once = chapter_copy.read_bytes()
    assert add_explorer_cell.main([str(chapter_copy)]) == 0
    assert chapter_copy.read_bytes() == once, "a second run must change nothing"
    after = nbformat.read(chapter_copy, as_version=4)
    nbformat.validate(after)
    i = add_explorer_cell.widget_cell_index(after)
    assert [c.id for c in after.cells].count(add_explorer_cell.CELL_ID) == 1
    inserted = after.cells[i + 1]
    assert inserted.id == add_explorer_cell.CELL_ID and inserted.cell_type == "markdown"
    assert f'data-model="{MODEL}"' in inserted.source
    for label in re.findall(r"\{eq\}`([^`]+)`", inserted.source):
        assert any(f"$$ ({label})" in c.source for c in after.cells), f"no equation ({label})"
    assert "remove-output" in after.cells[i].metadata["tags"]
    rest = [c for c in after.cells if c.id != add_explorer_cell.CELL_ID]
    old_rest = [c for c in before.cells if c.id != add_explorer_cell.CELL_ID]
    assert len(rest) == len(old_rest)
    for old, new in zip(old_rest, rest):
        assert (new.id, new.cell_type, new.source) == (old.id, old.cell_type, old.source)
        if old.cell_type == "code":
            assert (new.outputs, new.execution_count) == (old.outputs, old.execution_count)
        assert {k: v for k, v in new.metadata.items() if k != "tags"} == \
               {k: v for k, v in old.metadata.items() if k != "tags"}
        assert set(new.metadata.get("tags", [])) - set(old.metadata.get("tags", [])) <= {"remove-output"}


def test_explorer_cell_tool_brings_an_outdated_cell_up_to_date_in_place(chapter_copy):
    assert add_explorer_cell.main([str(chapter_copy)]) == 0
    nb = nbformat.read(chapter_copy, as_version=4)
    position = [c.id for c in nb.cells].index(add_explorer_cell.CELL_ID)
    nb.cells[position].source = "an older explorer cell"
    nbformat.write(nb, chapter_copy)
    assert add_explorer_cell.main([str(chapter_copy)]) == 0
    nb = nbformat.read(chapter_copy, as_version=4)
    assert [c.id for c in nb.cells].index(add_explorer_cell.CELL_ID) == position
    assert nb.cells[position].source == add_explorer_cell.SOURCE


def test_explorer_cell_tool_refuses_a_notebook_without_the_widget_cell(tmp_path):
    path = tmp_path / "other.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")]), path)
    content = path.read_bytes()
    assert add_explorer_cell.main([str(path)]) == 1
    assert path.read_bytes() == content
