"""book/syllabus.yml, read by vaecourse.syllabus: one entry per chapter, every exercise listed
once with its kind, level and time, answers where a derivation or experiment needs them, and
the instructor guide rendered from it."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from vaecourse import syllabus

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
# Chapters whose exercises already include every kind (implement, experiment, derive).
EVERY_KIND = ["01_quickstart", "02_elbo", "03_kl_closed_forms", "04_reparameterization",
              "05_first_vae", "06_latent_space", "07_beta", "08_residual_vae", "09_vae_vs_gan",
              "10_mmd_vae", "11_evaluation", "12_disentanglement",
              "13_posterior_collapse", "14_inference_gaps", "15_conditional_vae",
              "16_vq_vae", "17_latent_diffusion", "18_priors_and_hierarchies"]
# The last three chapters each end with a small project (an exercise of level 3).
LAST_THREE = ["09_vae_vs_gan", "10_mmd_vae", "11_evaluation"]


def exercise_labels(path: Path) -> list[str]:
    """The labels of the chapter's ``{exercise}`` directives, in order."""
    labels = []
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "markdown" and "```{exercise}" in cell.source:
            labels += re.findall(r"^:label:\s*(\S+)", cell.source, re.M)
    return labels


@pytest.fixture(scope="module")
def chapters():
    return syllabus.load()


def test_every_chapter_has_an_entry_and_nothing_else(chapters):
    assert list(chapters) == [p.stem for p in CHAPTERS]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_exercise_of_the_chapter_is_listed_and_nothing_else(chapters, path):
    listed = [e.label for e in chapters[path.stem].exercises]
    in_chapter = exercise_labels(path)
    assert in_chapter, "no exercises found"
    assert listed == in_chapter, (
        f"book/syllabus.yml lists {listed} for {path.stem}, the chapter has {in_chapter}: "
        "add, remove or reorder the entries (kind, level, minutes, answer) to match")


@pytest.mark.parametrize("slug", EVERY_KIND)
def test_these_chapters_have_an_exercise_of_every_kind(chapters, slug):
    assert {e.kind for e in chapters[slug].exercises} == set(syllabus.KINDS)


@pytest.mark.parametrize("slug", LAST_THREE)
def test_the_last_three_chapters_have_a_level_3_exercise(chapters, slug):
    assert any(e.level == 3 for e in chapters[slug].exercises)


def test_every_chapter_states_objectives_prerequisites_and_time(chapters):
    for ch in chapters.values():
        assert ch.title and ch.study_minutes > 0 and ch.objectives and ch.prerequisites
        assert all(1 <= e.level <= 3 and e.minutes > 0 for e in ch.exercises)
        title = nbformat.read(ROOT / "chapters" / f"{ch.slug}.ipynb", as_version=4).cells[1].source
        assert title.startswith(f"# {ch.title}\n"), f"{ch.slug}: the title differs from the chapter's"


def write(tmp_path, exercise: dict) -> Path:
    entry = {"title": "T", "study_minutes": 10, "prerequisites": ["p"], "objectives": ["o"],
             "exercises": [exercise]}
    path = tmp_path / "syllabus.yml"
    path.write_text(yaml.safe_dump({"chapters": {"01_x": entry}}), encoding="utf-8")
    return path


@pytest.mark.parametrize("exercise, says", [
    ({"label": "ex-a", "kind": "prove", "level": 1, "minutes": 5}, "kind must be one of"),
    ({"label": "ex-a", "kind": "implement", "level": 4, "minutes": 5}, "level must be"),
    ({"label": "ex-a", "kind": "implement", "level": 1, "minutes": 0}, "positive integer"),
    ({"label": "ex-a", "kind": "derive", "level": 1, "minutes": 5}, "needs its answer"),
    ({"label": "ex-a", "kind": "experiment", "level": 1, "minutes": 5}, "passing_run"),
    ({"label": "ex-a", "kind": "implement", "level": 1, "minutes": 5, "hint": "x"}, "unknown fields"),
])
def test_a_malformed_entry_is_refused_with_its_reason(tmp_path, exercise, says):
    with pytest.raises(ValueError, match=says):
        syllabus.load(write(tmp_path, exercise))


def test_the_guide_shows_every_exercise_with_its_answer(chapters):
    text = syllabus.guide_markdown(chapters)
    for ch in chapters.values():
        assert f"## {ch.title}" in text and f"../chapters/{ch.slug}.ipynb" in text
        for objective in ch.objectives:
            assert objective in text
        for e in ch.exercises:
            title = syllabus.exercise_titles(ch.slug)[e.label]
            assert f"| {{ref}}`{title} <{e.label}>` | {syllabus.KINDS[e.kind]} | {e.level} | {e.minutes} |" in text
            for part in (e.answer, e.passing_run):
                assert " ".join(part.split()) in text


def test_the_guide_page_is_in_the_book_and_reads_the_syllabus():
    page = (ROOT / "book" / "instructor_guide.md").read_text(encoding="utf-8")
    assert page.count("<!-- syllabus -->") == 1
    assert "--seed SECRET" in page and "solved chapters are public" in page
    toc = (ROOT / "book" / "_toc.yml").read_text(encoding="utf-8")
    assert "file: book/instructor_guide" in toc
    assert "syllabus_guide: book/_ext" in (ROOT / "_config.yml").read_text(encoding="utf-8")


def test_the_extension_replaces_the_marker_on_the_guide_page_only():
    spec = importlib.util.spec_from_file_location("syllabus_guide", ROOT / "book/_ext/syllabus_guide.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    guide, other = ["intro\n<!-- syllabus -->\n"], ["<!-- syllabus -->"]
    ext.insert_syllabus(None, "book/instructor_guide", guide)
    ext.insert_syllabus(None, "book/intro", other)
    assert guide[0] == "intro\n" + syllabus.guide_markdown() + "\n" and other == ["<!-- syllabus -->"]


@pytest.mark.parametrize("text, linked", [
    ("Chapter 2.", ["02_elbo"]),
    ("Chapters 2 and 3.", ["02_elbo", "03_kl_closed_forms"]),
    ("Chapters 1 to 4.", ["01_quickstart", "02_elbo", "03_kl_closed_forms", "04_reparameterization"]),
    ("Chapters 1, 3 and 5; PCA.", ["01_quickstart", "03_kl_closed_forms", "05_first_vae"]),
    ("The chain rule.", []),
])
def test_a_prerequisite_links_every_chapter_it_names(chapters, text, linked):
    shown = syllabus.linked_prerequisite(text, chapters)
    links = re.findall(r"\{doc\}`([^`<]+) </chapters/([^>]+)>`", shown)
    assert links == [(chapters[slug].title, slug) for slug in linked]
    assert re.sub(r" \(\{doc\}.*\)", "", shown) == text


def test_a_prerequisite_naming_no_chapter_is_refused(chapters):
    with pytest.raises(ValueError, match=r"\[99\]"):
        syllabus.linked_prerequisite("Chapters 11 and 99.", chapters)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_the_opening_box_shows_objectives_prerequisites_and_time(chapters, path):
    ch = chapters[path.stem]
    box = syllabus.opening_markdown(ch.slug, chapters)
    assert box.startswith(":::{admonition} In this chapter\n:class: chapter-opening\n")
    assert box.endswith(":::\n")
    for item in ch.objectives:
        assert f"\n- {item}\n" in box
    for item in ch.prerequisites:
        assert f"\n- {syllabus.linked_prerequisite(item, chapters)}\n" in box
    hours, minutes = divmod(ch.study_minutes, 60)
    assert f"about {hours} h" in box or f"about {minutes} min" in box


def test_the_opening_box_of_a_chapter_not_in_the_syllabus_is_refused(chapters):
    with pytest.raises(ValueError, match="no entry for chapter 99_x"):
        syllabus.opening_markdown("99_x", chapters)
