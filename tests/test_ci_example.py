"""scripts/ci-example.yml only uses mlee commands and options that exist (it must keep working as mlee changes)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from mlee.cli import app

WORKFLOW = Path(__file__).resolve().parents[1] / "scripts" / "ci-example.yml"


def _mlee_calls() -> list[list[str]]:
    """Every `mlee ...` command of the workflow's `run:` steps (plain, folded `>` and literal `|` blocks)."""
    lines = WORKFLOW.read_text(encoding="utf-8").splitlines()
    commands: list[str] = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)(?:- )?run:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2).strip()
        if rest not in (">", "|"):
            commands.append(rest)
            continue
        block = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            block.append(lines[i].strip())
            i += 1
        commands += [" ".join(block)] if rest == ">" else block
    return [shlex.split(c)[1:] for c in commands if c.startswith("mlee ")]


def test_workflow_commands_and_options_exist():
    calls = _mlee_calls()
    assert {c[0] for c in calls} == {"infer", "merge", "check", "label", "report"}
    runner = CliRunner()
    for args in calls:
        help_text = runner.invoke(app, [args[0], "--help"], env={"NO_COLOR": "1", "COLUMNS": "200"}).output
        for option in (a for a in args if a.startswith("-")):
            assert option in help_text, f"`mlee {args[0]}` has no option {option} (scripts/ci-example.yml)"


def test_workflow_check_step_gates_on_a_baseline():
    check = next(c for c in _mlee_calls() if c[0] == "check")
    assert "--baseline" in check and "--max-regression" in check and "--markdown" in check
