"""The course's syllabus: objectives, prerequisites, study time and exercises of each chapter.

One data file, ``book/syllabus.yml``, holds these facts; this module reads and validates it,
and renders the instructor guide's per-chapter sections from it
(``book/instructor_guide.md`` shows them through the Sphinx extension
``book/_ext/syllabus_guide.py``), and each chapter's opening box (what you will learn,
prerequisites linked to their chapters, study time: :func:`opening_markdown`, which
``book/_ext/chapter_opening.py`` inserts under the chapter's title when the book is built).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

__all__ = ["Exercise", "Chapter", "KINDS", "SYLLABUS", "load", "chapter", "exercise_titles",
           "guide_markdown", "linked_prerequisite", "opening_markdown"]

SYLLABUS = Path(__file__).resolve().parents[1] / "book" / "syllabus.yml"
KINDS = {"implement": "implement", "experiment": "experiment", "derive": "derive or predict"}
LEVELS = {1: "apply the chapter", 2: "combine or extend it", 3: "a small project or a new derivation"}


class Exercise(NamedTuple):
    label: str
    kind: str          # one of KINDS
    level: int         # 1, 2 or 3
    minutes: int
    answer: str = ""        # derive: the answer; implement: the answer to a written question
    passing_run: str = ""   # experiment: what a passing run shows
    note: str = ""


class Chapter(NamedTuple):
    slug: str          # the notebook's name without .ipynb, e.g. "05_first_vae"
    title: str
    study_minutes: int  # reading and running the chapter, exercises not included
    prerequisites: tuple[str, ...]
    objectives: tuple[str, ...]
    exercises: tuple[Exercise, ...]

    @property
    def exercise_minutes(self) -> int:
        return sum(e.minutes for e in self.exercises)


def _positive_int(where: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _texts(where: str, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"{where}: expected a non-empty list of texts, got {value!r}")
    return tuple(value)


def _exercise(where: str, raw: dict) -> Exercise:
    unknown = set(raw) - set(Exercise._fields)
    if unknown:
        raise ValueError(f"{where}: unknown fields {sorted(unknown)}")
    ex = Exercise(**{k: (v.strip() if isinstance(v, str) else v) for k, v in raw.items()})
    where = f"{where} ({ex.label})"
    if ex.kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {sorted(KINDS)}, got {ex.kind!r}")
    if ex.level not in LEVELS:
        raise ValueError(f"{where}: level must be 1, 2 or 3, got {ex.level!r}")
    _positive_int(f"{where}: minutes", ex.minutes)
    if ex.kind == "derive" and not ex.answer:
        raise ValueError(f"{where}: a derive exercise needs its answer")
    if ex.kind == "experiment" and not ex.passing_run:
        raise ValueError(f"{where}: an experiment needs passing_run, what a passing run shows")
    return ex


def load(path: Path | str = SYLLABUS) -> dict[str, Chapter]:
    """Every chapter of the syllabus, by slug, in the file's order; raises on a malformed entry.

    The file lives in the course's repository (``book/``), not in the installed package.
    """
    import yaml  # PyYAML: installed with the book's tools, not a dependency of the package

    # libyaml's parser where PyYAML was built with it (the same safe constructor): about 20
    # times faster on this file, which the book build reads once per chapter.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)
    chapters = {}
    for slug, entry in (raw or {}).get("chapters", {}).items():
        where = f"{Path(path).name}: {slug}"
        labels = [e.get("label") for e in entry.get("exercises", [])]
        if len(set(labels)) != len(labels):
            raise ValueError(f"{where}: an exercise label appears twice")
        chapters[slug] = Chapter(
            slug=slug, title=str(entry["title"]),
            study_minutes=_positive_int(f"{where}: study_minutes", entry.get("study_minutes")),
            prerequisites=_texts(f"{where}: prerequisites", entry.get("prerequisites")),
            objectives=_texts(f"{where}: objectives", entry.get("objectives")),
            exercises=tuple(_exercise(f"{where}: exercise {i + 1}", e)
                            for i, e in enumerate(entry.get("exercises", []))))
    return chapters


def chapter(slug: str, path: Path | str = SYLLABUS) -> Chapter:
    """The syllabus entry of one chapter, e.g. ``chapter("02_elbo")``."""
    return load(path)[slug]


def exercise_titles(slug: str, root: Path = SYLLABUS.parents[1]) -> dict[str, str]:
    """``{label: title}`` of the ``{exercise}`` directives of ``chapters/<slug>.ipynb``."""
    import json
    cells = json.loads((root / "chapters" / f"{slug}.ipynb").read_text(encoding="utf-8"))["cells"]
    titles = {}
    for cell in cells:
        text = "".join(cell["source"])
        for title, label in re.findall(r"```\{exercise\}[ \t]*(.*)\n:label:[ \t]*(\S+)", text):
            titles[label] = title.strip() or label
    return titles


def _hours(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    return " ".join(([f"{hours} h"] if hours else []) + ([f"{rest} min"] if rest or not hours else []))


def _chapter_markdown(ch: Chapter) -> list[str]:
    titles = exercise_titles(ch.slug)
    ref = {e.label: f"{{ref}}`{titles.get(e.label, e.label)} <{e.label}>`" for e in ch.exercises}
    lines = [f"## {ch.title}", "",
             f"[Chapter](../chapters/{ch.slug}.ipynb) · study time {_hours(ch.study_minutes)} "
             f"(reading and running), exercises {_hours(ch.exercise_minutes)}", "",
             "**Prerequisites**", ""]
    lines += [f"- {p}" for p in ch.prerequisites] + ["", "**Learning objectives**", ""]
    lines += [f"- {o}" for o in ch.objectives] + ["", "**Exercises**", "",
                                                  "| exercise | kind | level | minutes |",
                                                  "| --- | --- | --- | --- |"]
    lines += [f"| {ref[e.label]} | {KINDS[e.kind]} | {e.level} | {e.minutes} |"
              for e in ch.exercises]
    lines.append("")
    for e in ch.exercises:
        parts = [(label, text) for label, text in (
            ("Answer", e.answer), ("A passing run shows", e.passing_run), ("Note", e.note)) if text]
        for label, text in parts:
            lines += [f"{ref[e.label]}. *{label}.* {' '.join(text.split())}", ""]
    return lines


def guide_markdown(chapters: dict[str, Chapter] | None = None) -> str:
    """The instructor guide's per-chapter sections, as MyST Markdown."""
    chapters = load() if chapters is None else chapters
    lines = []
    for ch in chapters.values():
        lines += _chapter_markdown(ch)
    return "\n".join(lines).rstrip() + "\n"


# "Chapter 3", "Chapters 2 and 3", "Chapters 1 to 4", "Chapters 1, 2 and 5".
CHAPTER_MENTION = re.compile(r"\bChapters? (\d+(?:(?:, | and | to )\d+)*)")


def _mentioned(numbers: str) -> list[int]:
    """The chapter numbers a mention covers: ``"1 to 4"`` is 1, 2, 3, 4."""
    found, parts = [], re.split(r"(, | and | to )", numbers)
    for i in range(0, len(parts), 2):
        n = int(parts[i])
        if i and parts[i - 1] == " to ":
            found += range(found[-1] + 1, n + 1)
        else:
            found.append(n)
    return found


def linked_prerequisite(text: str, chapters: dict[str, Chapter]) -> str:
    """``text`` with every mention of chapters followed by links to them, as MyST.

    ``"Chapters 2 and 3."`` becomes ``"Chapters 2 and 3 ({doc}`The evidence lower bound
    </chapters/02_elbo>`, {doc}`...`)."``; a number that names no chapter raises.
    """
    by_number = {int(slug[:2]): ch for slug, ch in chapters.items()}

    def links(match: re.Match) -> str:
        numbers = _mentioned(match.group(1))
        unknown = [n for n in numbers if n not in by_number]
        if unknown:
            raise ValueError(f"prerequisite {text!r} names chapters {unknown}, which do not exist")
        named = ", ".join(f"{{doc}}`{by_number[n].title} </chapters/{by_number[n].slug}>`"
                          for n in numbers)
        return f"{match.group(0)} ({named})"

    return CHAPTER_MENTION.sub(links, text)


def opening_markdown(slug: str, chapters: dict[str, Chapter] | None = None) -> str:
    """The box that opens chapter ``slug``: objectives, linked prerequisites, study time (MyST)."""
    chapters = load() if chapters is None else chapters
    if slug not in chapters:
        raise ValueError(f"book/syllabus.yml has no entry for chapter {slug}")
    ch = chapters[slug]
    time = f"about {_hours(ch.study_minutes)} to read and run the chapter"
    if ch.exercises:
        time += f", and {_hours(ch.exercise_minutes)} for its {len(ch.exercises)} exercises"
    lines = [":::{admonition} In this chapter", ":class: chapter-opening", "",
             "**What you will learn**", ""]
    lines += [f"- {o}" for o in ch.objectives] + ["", "**Prerequisites**", ""]
    lines += [f"- {linked_prerequisite(p, chapters)}" for p in ch.prerequisites]
    lines += ["", f"**Study time**: {time}.", ":::"]
    return "\n".join(lines) + "\n"
