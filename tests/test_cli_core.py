"""The CLI shell: help, version, exit codes, fast start-up without heavy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlee import __version__
from mlee.cli import app, exit_code_for
from mlee.errors import (CommandNotFound, DeviceUnavailable, Interrupted, MleeError, OutputError,
                         SourcePermissionError, SourceUnavailable, UsageError)

ENV = {"NO_COLOR": "1", "COLUMNS": "120"}
ROOT = Path(__file__).resolve().parents[1]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env=ENV)


def test_help_lists_commands_and_exit_codes():
    for flag in ("--help", "-h"):
        result = invoke(flag)
        assert result.exit_code == 0
        text = " ".join(result.output.split())
        for command in ("doctor", "run"):
            assert command in text
        assert "Exit codes: 0 ok, 1 failure, 2 usage, 3 no usable power source" in text
        assert "127 command not found, 130 interrupted" in text


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"mlee {__version__}"


def test_unknown_command_and_option_are_usage_errors():
    assert invoke("frobnicate").exit_code == 2
    assert invoke("doctor", "--no-such-option").exit_code == 2


def test_each_error_class_has_its_exit_code():
    assert exit_code_for(UsageError("x")) == 2
    assert exit_code_for(SourceUnavailable("x")) == 3
    assert exit_code_for(SourcePermissionError("x")) == 4
    assert exit_code_for(CommandNotFound("x")) == 127
    assert exit_code_for(Interrupted("x")) == 130
    assert exit_code_for(MleeError("x")) == 1
    assert exit_code_for(KeyboardInterrupt()) == 130 and exit_code_for(ValueError("x")) == 1


def test_the_exit_code_comes_from_the_error_class():
    """Commands read ``exc.exit_code`` instead of asking the CLI (which would make them import it)."""
    assert [e.exit_code for e in (UsageError("x"), SourceUnavailable("x"), DeviceUnavailable("x"),
                                  SourcePermissionError("x"), CommandNotFound("x"), OutputError("x"))] == \
        [2, 3, 3, 4, 127, 1]
    assert Interrupted("x").exit_code == 130 and Interrupted("x", signum=15).exit_code == 143
    assert Interrupted("x", signum=1).exit_code == exit_code_for(Interrupted("x", signum=1)) == 129


def test_every_command_lives_in_a_module_named_after_it_and_no_command_imports_the_cli():
    import ast
    import pkgutil

    import typer

    import mlee.commands

    group = typer.main.get_command(app)
    modules = {m.name for m in pkgutil.iter_modules(mlee.commands.__path__) if not m.name.startswith("_")}
    assert set(group.commands) == modules
    for name, command in group.commands.items():
        function = getattr(command.callback, "__wrapped__", command.callback)
        assert (function.__module__, function.__name__) == (f"mlee.commands.{name}", name)
    for path in Path(mlee.commands.__path__[0]).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            imported = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                        [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                        if isinstance(node, ast.ImportFrom) else [])
            assert "mlee.cli" not in imported, f"{path.name} imports mlee.cli"


def test_importing_the_cli_pulls_in_no_heavy_library():
    code = ("import sys, mlee.cli; heavy = [m for m in ('torch', 'tensorflow', 'codecarbon', 'reportlab', 'plotly', "
            "'pandas', 'sklearn', 'onnxruntime', 'pynvml') if m in sys.modules]; print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--help"], ["doctor", "--help"], ["run", "--help"]])
def test_help_works_as_a_real_process(args):
    proc = subprocess.run([sys.executable, "-m", "mlee", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=60, env={**ENV, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout


def test_the_suite_cannot_reach_the_network():
    import socket

    with pytest.raises(RuntimeError, match="tried to connect"):
        socket.create_connection(("192.0.2.1", 443), timeout=0.5)  # TEST-NET-1: never routable anyway


def test_every_json_output_goes_through_the_one_printer(capsys):
    """`--json` of different commands is the same canonical JSON: sorted keys, indent 2, UTF-8, one newline."""
    import json

    from mlee.console import print_json
    from mlee.fsutil import canonical_json

    for args in (("models", "--json"), ("profile", "--list", "--limit", "1", "--kernels", "relu", "--json")):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert result.stdout == canonical_json(json.loads(result.stdout)), args
    print_json({"b": "Zürich", "a": [1.5]})
    assert capsys.readouterr().out == '{\n  "a": [\n    1.5\n  ],\n  "b": "Zürich"\n}\n'
    with pytest.raises(ValueError):
        print_json({"energy_j": float("nan")})
