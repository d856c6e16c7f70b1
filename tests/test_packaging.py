"""What a user downloads: the sdist and the wheel carry the licence, the docs and examples,
and the version dbscope reports.

Both are built from a copy of this checkout (the build writes egg-info and build/ next to
the sources), offline, with this venv's setuptools: the dev dependency group has `build`
and `setuptools`. CI also builds them in isolation and runs the examples on the wheel.
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

import dbscope

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Built:
    sdist_names: frozenset[str]  # paths inside the sdist, without its top directory
    wheel_names: frozenset[str]
    metadata: EmailMessage  # the wheel's METADATA
    entry_points: str  # the wheel's entry_points.txt


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    pytest.importorskip("build", reason="the build package is not installed: pip install --group dev")
    work = tmp_path_factory.mktemp("packaging")
    source = work / "source"
    # every dot-directory (.git, .venv, caches), what earlier builds and runs left
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(".*", "__pycache__", "*.egg-info", "build", "dist"),
    )
    dist = work / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = dist.glob("dbscope-*.tar.gz")
    (wheel,) = dist.glob("dbscope-*.whl")
    with tarfile.open(sdist) as archive:
        sdist_names = frozenset(name.partition("/")[2] for name in archive.getnames())
    with zipfile.ZipFile(wheel) as archive:
        wheel_names = frozenset(archive.namelist())
        (metadata_name,) = [name for name in wheel_names if name.endswith(".dist-info/METADATA")]
        raw = archive.read(metadata_name)
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()
    metadata = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    assert isinstance(metadata, EmailMessage)
    return Built(sdist_names=sdist_names, wheel_names=wheel_names, metadata=metadata, entry_points=entry_points)


def test_the_wheel_and_the_sdist_both_carry_the_licence(built: Built) -> None:
    assert "LICENSE" in built.sdist_names
    assert f"dbscope-{dbscope.__version__}.dist-info/licenses/LICENSE" in built.wheel_names
    assert built.metadata["License-Expression"] == "MIT"
    assert built.metadata.get_all("License-File") == ["LICENSE"]


def test_the_sdist_carries_the_docs_the_examples_and_the_changelog(built: Built) -> None:
    expected = {"README.md", "CHANGELOG.md", "LICENSE", "examples/pytest.ini", "examples/festival/pytest.ini"}
    expected |= {path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").rglob("*.md")}
    expected |= {path.relative_to(ROOT).as_posix() for path in (ROOT / "examples").rglob("test_*.py")}
    assert expected - built.sdist_names == set()
    # dbscope's own suite needs the repository (benchmarks, CI scripts): none of it, not a part
    assert not [name for name in built.sdist_names if name.startswith("tests/")]
    assert not [name for name in built.sdist_names if name.endswith(".pyc")]


def test_the_version_is_written_once_and_reported_as_built(built: Built) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert built.metadata["Version"] == project["version"] == dbscope.__version__
    # the one fallback, for a source tree imported without being installed, is no release
    assert not re.search(r'__version__ = "\d+\.\d+', (ROOT / "src" / "dbscope" / "__init__.py").read_text())


def test_the_wheel_is_the_plugin_with_its_types_and_only_user_extras(built: Built) -> None:
    assert "dbscope/py.typed" in built.wheel_names
    assert "[pytest11]\ndbscope = dbscope.plugin" in built.entry_points
    assert "[console_scripts]\ndbscope = dbscope.cli:main" in built.entry_points
    assert sorted(built.metadata.get_all("Provides-Extra") or []) == [
        "alembic",
        "mysql",
        "mysqlclient",
        "postgres",
        "postgres-binary",
        "sqlalchemy",
    ]
    requires = built.metadata.get_all("Requires-Dist") or []
    assert "pytest>=8" in requires
    assert 'psycopg>=3.1; extra == "postgres"' in requires
