"""The documentation: the MkDocs site builds strictly, and every `mlee ...` command it shows exists as written.

Pages are found by globbing ``docs/*.md`` (plus README.md), so pages added later are checked without editing this.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from mlee.cli import app

ROOT = Path(__file__).resolve().parents[1]
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(```|~~~)")
# Where a command ends: a shell operator or `--` (what follows belongs to `mlee run`'s CMD). A pipe needs spaces
# around it, so that the alternatives of a synopsis (`[--grid quick|full] [--limit N]`) stay one command.
_SEGMENT = re.compile(r"\s\|\|?\s|&&|;|\$\(")
_STOP = {">", ">>", "2>", "2>&1", "--", "<", ")"}
_PREFIX = re.compile(r"^(\$|time|sudo|env|[A-Za-z_][A-Za-z0-9_]*=\S*)$")
_OPTION = re.compile(r"^--?[A-Za-z][\w-]*")


def code_snippets(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced-block line (continuations joined) and every inline code span."""
    found: list[tuple[int, str]] = []
    lines = text.splitlines()
    in_fence, pending, pending_line = False, "", 0
    for number, line in enumerate(lines, 1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            if not pending:
                pending_line = number
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            found.append((pending_line, pending + line))
            pending = ""
        else:
            found += [(number, span) for span in re.findall(r"`([^`\n]+)`", line)]
    return found


def mlee_invocations(code: str) -> list[list[str]]:
    """The arguments of every `mlee` invocation in a line of shell: `mlee ...`, `.venv/bin/mlee ...`,
    `python -m mlee ...`, after a prompt, variable assignments or another command's `&&`."""
    code = re.sub(r"(^|\s)#.*$", "", code)  # a shell comment
    found = []
    for segment in _SEGMENT.split(code):
        try:
            words = shlex.split(segment)
        except ValueError:  # an unbalanced quote in an inline span
            words = segment.split()
        while words and _PREFIX.match(words[0]):
            words = words[1:]
        if words[:1] and (words[0] == "mlee" or words[0].endswith("/mlee")):
            words = words[1:]
        elif len(words) >= 3 and re.search(r"(^|/)python3?$", words[0]) and words[1:3] == ["-m", "mlee"]:
            words = words[3:]
        else:
            continue
        args = []
        for word in words:
            if word in _STOP:
                break
            args.append(word)
        found.append(args)
    return found


def _options(command) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        names.update(getattr(param, "opts", ()))
        names.update(getattr(param, "secondary_opts", ()))
    return {n for n in names if n.startswith("-")}


def check_commands(text: str, where: str) -> list[str]:
    """Problems with the `mlee ...` commands in ``text``: unknown commands, options a command does not have."""
    root = typer.main.get_command(app)
    problems = []
    for number, code in code_snippets(text):
        for words in mlee_invocations(code):
            if not words:
                continue
            head = words[0].strip("[](),")
            if _OPTION.match(head):
                command, args = root, words
            elif re.fullmatch(r"[a-z][a-z-]*", head):
                command = root.commands.get(head)
                if command is None:
                    problems.append(f"{where}:{number}: `mlee {head}`: no such command")
                    continue
                args = words[1:]
            else:
                continue
            known = _options(command)
            for word in args:
                option = _OPTION.match(word.strip("[]()"))
                if option and option.group(0) not in known:
                    problems.append(f"{where}:{number}: `mlee {head}` has no option {option.group(0)}")
    return problems


def _pages() -> list[Path]:
    return sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def test_every_command_in_the_docs_exists_with_its_options():
    problems = []
    for page in _pages():
        problems += check_commands(page.read_text(encoding="utf-8"), str(page.relative_to(ROOT)))
    assert not problems, "\n".join(problems)


def test_the_check_finds_unknown_commands_and_options():
    text = ("Run `mlee infer -m ResNet50 --no-such-flag 3` or `mlee frobnicate DB`; `newer than this mlee reads`.\n\n"
            "```bash\nmlee rate merged.json \\\n  --spec mlee --bogus\n"
            "mlee run --wrapped-ok -- python train.py --anything  # after -- belongs to CMD\n"
            "mlee label DB --all -o labels   # mlee nosuch --in-a-comment\n"
            "$ ./setup.sh && X=1 .venv/bin/mlee demo --nope\n"
            "python -m mlee merge runs -o db.json --nope2 | tee log\n```\n")
    problems = check_commands(text, "page.md")
    assert problems == ["page.md:1: `mlee infer` has no option --no-such-flag",
                        "page.md:1: `mlee frobnicate`: no such command",
                        "page.md:4: `mlee rate` has no option --bogus",
                        "page.md:6: `mlee run` has no option --wrapped-ok",
                        "page.md:8: `mlee demo` has no option --nope",
                        "page.md:9: `mlee merge` has no option --nope2"], problems


def test_the_docs_cover_the_guides_and_the_commands_are_found():
    names = {p.name for p in _pages()}
    for page in ("index.md", "getting-started.md", "measurement.md", "models.md", "file-formats.md", "rating.md",
                 "labels.md", "report.md", "prediction.md", "ci.md", "cluster.md", "carbon.md"):
        assert page in names, page
    shown = {words[0] for p in _pages() for _, code in code_snippets(p.read_text())
             for words in mlee_invocations(code) if words}
    # Every command of the app appears in the docs at least once.
    assert set(typer.main.get_command(app).commands) <= shown, set(typer.main.get_command(app).commands) - shown


def test_the_readme_is_a_front_page_with_the_two_quickstart_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 260
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, flags=re.S)
    assert blocks[:2] == ["./scripts/setup.sh && .venv/bin/mlee demo",
                          "./scripts/setup.sh --test && .venv/bin/python -m pytest -q"]


def test_mkdocs_builds_the_site_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(site)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for page in ("index.html", "getting-started/index.html", "rating/index.html", "file-formats/index.html"):
        assert (site / page).is_file(), page
    assert "Rating method" in (site / "index.html").read_text(encoding="utf-8")
