"""The package as pip installs it: the wheel's contents, a cheap import, a clean lint."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "torchlesson"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, (
        f"building the wheel failed:\n{build.stdout[-3000:]}\n{build.stderr[-3000:]}"
    )
    (path,) = out.glob("torchlesson-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


@pytest.mark.parametrize(
    ("folder", "pattern"), [("static", "*.js"), ("static", "*.css"), ("quizzes", "*.toml")]
)
def test_wheel_ships_the_package_data(wheel: zipfile.ZipFile, folder: str, pattern: str) -> None:
    expected = sorted(f"torchlesson/{folder}/{p.name}" for p in (PACKAGE / folder).glob(pattern))
    assert expected, f"src/torchlesson/{folder} has no {pattern} file to ship"
    missing = sorted(set(expected) - set(wheel.namelist()))
    assert not missing, f"the wheel lacks {missing}"


def test_wheel_ships_typing_marker_and_no_tests(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert "torchlesson/py.typed" in names
    assert not [n for n in names if n.startswith(("tests/", "examples/", "torchlesson/tests/"))]


def test_import_is_cheap_and_version_matches_the_wheel(wheel: zipfile.ZipFile) -> None:
    probe = "import sys, torchlesson; print(torchlesson.__version__); print('torch' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    version, torch_imported = run.stdout.split()
    assert torch_imported == "False", "`import torchlesson` must not import torch (it takes seconds)"

    (metadata,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    fields = Parser().parsestr(wheel.read(metadata).decode("utf-8"))
    assert fields["Name"] == "torchlesson"
    assert fields["Version"] == version


def test_ruff_is_clean() -> None:
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format=concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_lessons_install_line_names_the_wheel_that_is_built(wheel: zipfile.ZipFile) -> None:
    """The lessons tell learners without the package (Colab) to install the wheel by its file name."""
    name = Path(wheel.filename).name
    lessons = sorted((ROOT / "examples").glob("*.ipynb"))
    assert lessons
    for lesson in lessons:
        assert f"# %pip install {name}" in lesson.read_text(encoding="utf-8"), lesson.name
