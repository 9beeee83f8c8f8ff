"""The README's commands without make are the Makefile's commands.

For each of the targets ``install``, ``book``, ``test`` and ``unit``, the
commands that ``make -n`` prints must equal, argument for argument and with the
same environment variables, the commands listed under ``# make <target>`` in
the README's "Set-up without make" blocks: the bash block as written, and the
PowerShell block once ``.venv\\Scripts\\`` is read as ``.venv/bin/``.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TARGETS = ["install", "book", "test", "unit"]
ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
PS_ASSIGNMENT = re.compile(r'^\$env:([A-Z_][A-Z0-9_]*)\s*=\s*"([^"]*)"$')

Command = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]  # (environment, argv)


def split(line: str, env: dict[str, str] | None = None) -> Command:
    """Environment assignments in front of a command, and its arguments."""
    words = shlex.split(line)
    env = dict(env or {})
    while words and ASSIGNMENT.match(words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return tuple(sorted(env.items())), tuple(words)


def make_commands(target: str) -> list[Command]:
    """The commands ``make`` runs for ``target``, printed by ``make -n`` (not run)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("VENV", "PYTHON", "WORKERS", "PYTEST_ARGS", "MAKEFLAGS", "MAKELEVEL")}
    run = subprocess.run(["make", "--no-print-directory", "-n", "-B", target], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True)
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    return [split(line) for line in lines if not line.startswith(("echo ", "touch "))]


def readme_section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Set-up without make\n")
    return text[start:text.index("\n## ", start + 1)]


def readme_block(language: str) -> str:
    (block,) = re.findall(rf"```{language}\n(.*?)```", readme_section().split("\n### ")[0], re.S)
    return block


def joined(block: str, continuation: str) -> list[str]:
    """The lines of ``block``, a line that ends with ``continuation`` joined to the next."""
    lines: list[str] = []
    for line in block.splitlines():
        if lines and lines[-1].endswith(continuation):
            lines[-1] = lines[-1][: -len(continuation)].rstrip() + " " + line.strip()
        else:
            lines.append(line)
    return lines


def grouped(block: str, parse, continuation: str) -> dict[str, list[Command]]:
    """Commands of a README block, under the ``# make <target>`` comment above them; a
    command may go on over several lines, each but the last ending with ``continuation``
    (a backslash in bash, a backtick in PowerShell), so that the block fits the book's column."""
    groups: dict[str, list[Command]] = {}
    target = None
    for line in joined(block, continuation):
        heading = re.match(r"^# make (\w+)", line)
        if heading:
            target = heading.group(1)
            groups[target] = []
        elif line.strip() and not line.startswith("#"):
            assert target, f"command before any '# make <target>' line: {line}"
            command = parse(line)
            if command is not None:
                groups[target].append(command)
    return groups


def posix_commands() -> dict[str, list[Command]]:
    return grouped(readme_block("bash"), split, " \\")


def powershell_commands() -> dict[str, list[Command]]:
    env: dict[str, str] = {}  # $env:NAME = "value" holds for the rest of the session

    def parse(line: str) -> Command | None:
        assignment = PS_ASSIGNMENT.match(line.strip())
        if assignment:
            env[assignment.group(1)] = assignment.group(2)
            return None
        line = line.replace(".venv\\Scripts\\", ".venv/bin/").replace("\\", "/")
        env_items, argv = split(line, env)
        if argv[:3] in (("py", "-m", "venv"), ("python", "-m", "venv")):
            argv = ("python3",) + argv[1:]  # the Makefile's PYTHON
        return env_items, argv

    return grouped(readme_block("powershell"), parse, " `")


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@needs_make
@pytest.mark.parametrize("target", TARGETS)
def test_readme_bash_commands_are_the_makefile_commands(target):
    want = make_commands(target)
    if target != "install":  # `make -B` prints the install steps before the target's own
        want = want[len(make_commands("install")):]
    assert want, f"make -n {target} printed no command"
    assert posix_commands()[target] == want


@needs_make
@pytest.mark.parametrize("target", TARGETS)
def test_readme_powershell_commands_are_the_makefile_commands(target):
    want = make_commands(target)
    if target != "install":
        want = want[len(make_commands("install")):]
    assert powershell_commands()[target] == want


def test_readme_lists_each_target_once_in_each_block():
    assert list(posix_commands()) == TARGETS
    assert list(powershell_commands()) == TARGETS


@needs_make
def test_readme_refresh_command_is_the_makefile_one():
    (want,) = make_commands("notebooks")[len(make_commands("install")):]
    assert " ".join(want[1]) in readme_section()
