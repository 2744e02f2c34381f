"""The wheel: built offline from a copy of the sources, without build-backend warnings, holding every data file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WARNINGS = ("BuildBackendWarning", "SetuptoolsDeprecationWarning", "absent from the `packages` configuration",
            "License classifiers are deprecated")


def _build_wheel(tmp_path: Path) -> tuple[Path, str]:
    """Copy what a build reads into ``tmp_path`` (the checkout stays clean) and build a wheel there, offline."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "mlee", src / "mlee", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE.md"):
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(dist), str(src)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_NO_INPUT": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = list(dist.glob("mlee-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0], proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    setuptools = pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    if int(setuptools.__version__.split(".")[0]) < 77:  # the `test` extra installs a newer one
        pytest.skip(f"setuptools {setuptools.__version__} predates license_expression (77)")
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_builds_without_build_backend_warnings(wheel):
    _, log = wheel
    found = [w for w in WARNINGS if w in log]
    assert not found, f"build backend warned: {found}\n{log[-4000:]}"


def test_the_wheel_holds_presets_schemas_and_report_assets(wheel):
    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    for folder, pattern in (("mlee/rating/presets", "*.json"), ("mlee/schema", "*.json"),
                            ("mlee/report/assets", "*")):
        shipped = sorted(p.name for p in (ROOT / folder).glob(pattern) if p.is_file())
        assert shipped, folder
        missing = [f"{folder}/{n}" for n in shipped if f"{folder}/{n}" not in names]
        assert not missing, f"missing from the wheel: {missing}"
    assert "mlee/py.typed" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith("tests/")]
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    metadata = zipfile.ZipFile(path).read(meta).decode()
    assert "License-Expression: MIT" in metadata and "License ::" not in metadata
    entry_points = zipfile.ZipFile(path).read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert "mlee = mlee.cli:main" in entry_points


def test_mlee_runs_from_the_unpacked_wheel(wheel, tmp_path):
    # The wheel's files only, first on the path: `mlee --help`, a preset, a schema and a report asset load from it.
    path, _ = wheel
    site = tmp_path / "site"
    zipfile.ZipFile(path).extractall(site)
    script = (
        "import sys, mlee\n"
        f"assert mlee.__file__.startswith({str(site)!r}), mlee.__file__\n"
        "from mlee.rating import load_spec\n"
        "from mlee.results.schema_base import load_schema\n"
        "from mlee.report.html import asset\n"
        "assert load_spec('mlee').task('inference').reference == 'ResNet50'\n"
        "assert load_schema('results')['type'] == 'object'\n"
        "assert '<html' in asset('template.html').lower()\n"
        "from mlee.cli import main\n"
        "main(['--help'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "NO_COLOR": "1", "COLUMNS": "120"}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Usage: mlee" in proc.stdout and "demo" in proc.stdout
