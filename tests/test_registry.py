"""The backend registry: one table, read by every message that lists backends; no caller branches on one.

Each message that tells a user which URLs dbscope takes must list exactly the registry's
examples (or schemes), so a new backend appears everywhere with its one registry line.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dbscope.backends import registry
from dbscope.backends.registry import BACKENDS, BackendEntry
from dbscope.config import SETTINGS
from dbscope.errors import BackendUnavailableError, ConfigError
from dbscope.urls import parse_backend_url

SRC = Path(__file__).resolve().parent.parent / "src" / "dbscope"
EXAMPLES = [entry.example for entry in BACKENDS]
USAGES = [f"{entry.example} ({entry.title})" for entry in BACKENDS]


def urls_in(text: str) -> list[str]:
    """The example URLs a message names, in order (a URL ends at a space, a comma or a parenthesis)."""
    return re.findall(r"[a-z][a-z0-9+]*://[^\s,()]*", text)


def test_every_scheme_belongs_to_exactly_one_backend_and_each_example_parses_to_its_own() -> None:
    schemes = [scheme for entry in BACKENDS for scheme in entry.schemes]
    assert len(schemes) == len(set(schemes))
    assert sorted(schemes) == registry.schemes()
    for entry in BACKENDS:
        assert parse_backend_url(entry.example.replace("host:port", "localhost:5432")).entry is entry
        assert all(registry.by_scheme(scheme.upper()) is entry for scheme in entry.schemes)


def test_a_string_that_is_no_url_lists_every_backend() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_backend_url("localhost/app")
    assert urls_in(str(caught.value)) == EXAMPLES
    assert all(usage in str(caught.value) for usage in USAGES)


def test_an_unknown_scheme_lists_every_scheme() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_backend_url("oracle://app@localhost/app")
    known = str(caught.value).partition("; known schemes: ")[2]
    assert known.split(", ") == registry.schemes()


def test_the_url_settings_help_lists_every_backend() -> None:
    [url] = [setting for setting in SETTINGS if setting.name == "url"]
    assert urls_in(url.help) == ["sqlite://", *EXAMPLES]  # the default first
    assert all(usage in url.help for usage in USAGES)


def test_pytest_help_lists_every_backend_for_dbscope_url(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    text = " ".join(line.strip() for line in result.outlines)
    for usage in USAGES:
        assert usage in text


def test_dbscope_help_lists_every_backend(capsys: pytest.CaptureFixture[str]) -> None:
    from dbscope.cli import main

    for argv in (["--help"], ["gc", "--help"], ["doctor", "--help"]):
        assert main(argv) == 0
        text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
        assert urls_in(text.partition("URL")[2])[: len(EXAMPLES)] == EXAMPLES, argv
        assert all(usage in text for usage in USAGES), argv


def test_a_backend_whose_module_is_missing_is_not_available_and_the_others_are_listed() -> None:
    missing = BackendEntry(
        ("memo",), "a backend not shipped", "memo://", "dbscope.backends.no_such_module:X", "server", "x"
    )
    with pytest.raises(BackendUnavailableError) as caught:
        missing.load("memo://")
    message = str(caught.value)
    assert message.startswith("a backend not shipped (memo://) is not available in this version of dbscope; use ")
    assert urls_in(message.partition("; use ")[2]) == EXAMPLES
    assert all(usage in message for usage in USAGES)


def test_a_backend_whose_driver_is_missing_says_what_to_install() -> None:
    needs = BackendEntry(
        ("memo",), "Memo", "memo://", "dbscope.backends.sqlite_tools:MEMORY", "server", "x",
        driver="no_such_driver_module", driver_title="nodriver 2", install="pip install 'dbscope[memo]'",
    )  # fmt: skip
    with pytest.raises(BackendUnavailableError, match=r"^Memo \(memo://\) needs nodriver 2, which is not installed: "):
        needs.load("memo://")


def test_sqlite_never_imports_psycopg() -> None:
    code = (
        "import sys, dbscope\n"
        "from dbscope.urls import parse_backend_url\n"
        "with dbscope.IsolationManager('sqlite://') as manager:\n"
        "    with manager.scope('t') as scope: scope.client().execute('SELECT 1')\n"
        "parse_backend_url('sqlite:///x').backend_type(); parse_backend_url('postgresql://u@h/db')\n"
        "print('psycopg' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# -- no caller branches on which backend a URL chose ---------------------------------------

CALLERS = [
    "cli.py",
    "plugin.py",
    "manager.py",
    "config.py",
    "urls.py",
    *sorted(p.name for p in (SRC / "backends").glob("*.py")),
]


@pytest.mark.parametrize("name", CALLERS)
def test_no_module_compares_a_backend_family_or_kind(name: str) -> None:
    path = SRC / name if (SRC / name).exists() else SRC / "backends" / name
    if path.name == "registry.py":
        return
    source = path.read_text()
    assert not re.findall(r"\.(family|kind) ==", source), path


def test_the_command_imports_no_driver() -> None:
    tree = ast.parse((SRC / "cli.py").read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"sqlite3", "psycopg", "asyncpg", "aiosqlite"}
