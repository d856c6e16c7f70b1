"""The documentation speaks to users: every file it names exists, it cites no document a
user does not have, every module is in the architecture table, and every page is reachable.

The docs are README.md, docs/*.md and the READMEs under examples/. Fenced code blocks are
left out of the prose checks: their paths are the user's project (``tests/seed.sql``), not
this repository. The comments and strings (docstrings, messages) of the examples and of
src/dbscope, and the examples' .ini files, are read by users too: they cite no outside
document either.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "dbscope"
HOW_IT_WORKS = ROOT / "docs" / "how-it-works.md"

#: files the docs name that a command writes, not the repository: path -> the script that writes it
GENERATED = {
    "benchmarks/results/bench_sqlite.json": "benchmarks/bench_sqlite.py",
    "tests/reliability/figures.json": "tests/reliability/conftest.py",
}

#: documents that exist only outside the repository, and words that name them
FOREIGN = [
    (re.compile(r"\bMEASUREMENTS\b"), "MEASUREMENTS.md is not in the repository"),
    (re.compile(r"\bDESIGN\b"), "DESIGN is not in the repository"),
    (re.compile(r"\bthe seed's\b", re.IGNORECASE), "'the seed's' names a document users never see"),
    (re.compile(r"\bthe seeds\b|\bseeds'", re.IGNORECASE), "'the seeds' names documents users never see"),
    (re.compile(r"\bseed \d{3}\b", re.IGNORECASE), "'seed 000' names a document users never see"),
    # "the seed" alone is the source document; seed data keeps its name (dbscope_seed)
    (
        re.compile(r"\bthe seed\b(?! (?:data|rows|file|files|statements|sql)\b)", re.IGNORECASE),
        "'the seed' names a document users never see (say 'the seed data')",
    ),
]

#: what the comments and strings of the code may not name either: the documents above, and
#: functions and files of JavaScript code that is not in this project
FOREIGN_IN_CODE = [
    *FOREIGN,
    (
        re.compile(r"resetForTesting|setup-integration|getDbClient|getConnectionStats|cleanDatabase"),
        "a function or file that is not in the project",
    ),
    (re.compile(r"lib/database\.js"), "a file that is not in the project"),
]

_FENCE = re.compile(r"^\s*(```|~~~)")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\n]+)`")
_BARE = re.compile(r"(?<![\w/.`-])((?:benchmarks|docs|examples|src|tests)/[\w./*-]*(?:\.\w+|/))")
_TABLE_SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")


def doc_files() -> list[Path]:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    docs += sorted(p for p in (ROOT / "examples").rglob("README*") if p.is_file())
    return docs


def doc_id(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of the text outside code blocks, fenced or indented."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None
    indented = False  # inside an indented code block: four spaces after a blank line
    previous = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        opened = _FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            code = line.startswith(("    ", "\t")) and (indented or not previous.strip())
            indented = code or (indented and not line.strip())
            if not code:
                lines.append((number, line))
        previous = line
    return lines


def _exists(base: Path, relative: str) -> bool:
    if any(c in relative for c in "*?["):
        return any(base.glob(relative.rstrip("/")))
    return (base / relative).exists()


def referenced_paths(path: Path) -> list[tuple[int, str, Path, str]]:
    """Every repository file a doc names: (line, as written, the directory it is relative to, path)."""
    found: list[tuple[int, str, Path, str]] = []
    roots = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
    for number, line in prose_lines(path):
        for target in _LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            found.append((number, target, path.parent, target.split("#", 1)[0]))
        without_code = _CODE.sub(" ", _LINK.sub(" ", line))
        tokens = _CODE.findall(line) + _BARE.findall(without_code)
        for token in tokens:
            candidate = token.split("::", 1)[0]  # a test's node id names its file
            if re.search(r"\s|^[/~.]|[<>{}=:]|^\w+://", candidate):
                continue  # not a path in the repository: a URL, /dev/shm, a setting, a command
            first = candidate.split("/", 1)[0]
            if "/" not in candidate and not candidate.endswith(".md"):
                continue  # a bare word: a table, a module, a setting value
            if (path.parent / first).exists():
                found.append((number, token, path.parent, candidate))
            elif first in roots or candidate.endswith(".md"):
                found.append((number, token, ROOT, candidate))
    return found


@pytest.mark.parametrize("doc", doc_files(), ids=doc_id)
def test_every_file_a_doc_names_exists(doc: Path) -> None:
    missing = []
    for number, written, base, relative in referenced_paths(doc):
        if relative in GENERATED and base == ROOT:
            continue  # checked by test_generated_files_the_docs_name_are_written_by_their_script
        if not _exists(base, relative):
            missing.append(f"{doc_id(doc)}:{number}: {written}")
    assert not missing, "the docs name files that are not in the repository:\n" + "\n".join(missing)


def test_the_reference_finder_sees_links_backticked_and_bare_paths(tmp_path: Path) -> None:
    text = (
        "See [the guide](choosing.md#backends), `benchmarks/bench_sqlite.py`,\n"
        "`tests/test_plugin.py::test_x`, tests/reliability/ and `CHANGELOG.md`; not `/dev/shm`,\n"
        "`sqlite:///dir`, `dbscope_seed`, `migrations/0003_shop.sql` or [a site](https://example.com).\n"
        "```toml\ndbscope_seed = `tests/in_a_fence.sql`\n```\n"
    )
    sample = tmp_path / "sample.md"
    sample.write_text(text)
    names = [relative for _, _, _, relative in referenced_paths(sample)]
    assert names[:1] == ["choosing.md"]  # a link, relative to the page
    assert set(names[1:]) == {
        "benchmarks/bench_sqlite.py",
        "tests/test_plugin.py",
        "tests/reliability/",
        "CHANGELOG.md",
    }


def test_generated_files_the_docs_name_are_written_by_their_script() -> None:
    for output, script in GENERATED.items():
        assert Path(output).name in (ROOT / script).read_text(encoding="utf-8"), (output, script)


@pytest.mark.parametrize("doc", doc_files(), ids=doc_id)
def test_no_doc_cites_a_document_outside_the_repository(doc: Path) -> None:
    found = [
        f"{doc_id(doc)}:{number}: {why}: {line.strip()[:100]}"
        for number, line in prose_lines(doc)
        for pattern, why in FOREIGN
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("doc", doc_files(), ids=doc_id)
def test_no_table_is_split_by_a_blank_line(doc: Path) -> None:
    lines = [line for _, line in prose_lines(doc)] + ["", ""]
    splits = [
        f"{doc_id(doc)}: a blank line after {lines[i - 1][:60]!r}"
        for i in range(1, len(lines) - 2)
        if not lines[i].strip()
        and lines[i - 1].startswith("|")
        and lines[i + 1].startswith("|")
        and not _TABLE_SEPARATOR.match(lines[i + 2])  # a new table has its own header
    ]
    assert not splits, "\n".join(splits)


def architecture_modules() -> list[str]:
    text = HOW_IT_WORKS.read_text(encoding="utf-8")
    section = text.split("\n## Architecture\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+\.py)` \| \S", section, flags=re.MULTILINE)


def test_the_architecture_section_names_every_module_once_with_its_job() -> None:
    modules = sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)
    listed = architecture_modules()
    assert len(listed) == len(set(listed)), "a module is listed twice"
    assert sorted(listed) == modules, (
        f"docs/how-it-works.md's Architecture table is out of date: "
        f"missing {sorted(set(modules) - set(listed))}, gone {sorted(set(listed) - set(modules))}"
    )


def test_every_benchmark_script_is_named_by_the_docs_it_measures_for() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in doc_files())
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        assert f"benchmarks/{script.name}" in text, f"no doc says what benchmarks/{script.name} measures"


def test_the_readme_links_every_page_of_docs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


def test_the_readme_opens_with_the_two_commands_that_work_on_a_fresh_machine() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    before_first_section = readme.split("\n## ", 1)[0]
    first_block = before_first_section.split("```", 2)[1]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["./run examples", "./run tests"]


# -- the code users read: examples and src/dbscope -------------------------------------------


def code_files() -> list[Path]:
    examples = ROOT / "examples"
    files = [*examples.rglob("*.py"), *examples.rglob("*.ini"), *SRC.rglob("*.py")]
    return sorted(p for p in files if p.is_file() and "__pycache__" not in p.parts and ".venv" not in p.parts)


def read_text_of_code(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of what a reader of ``path`` reads as prose: every line of an .ini
    file; the comments and string literals (docstrings, messages) of a Python file."""
    source = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return list(enumerate(source.splitlines(), start=1))
    lines: list[tuple[int, str]] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING) or token.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            first = token.start[0]
            lines += [(first + offset, text) for offset, text in enumerate(token.string.splitlines())]
    return lines


@pytest.mark.parametrize("path", code_files(), ids=doc_id)
def test_no_comment_or_string_in_the_code_cites_a_document_outside_the_repository(path: Path) -> None:
    found = [
        f"{doc_id(path)}:{number}: {why}: {line.strip()[:100]}"
        for number, line in read_text_of_code(path)
        for pattern, why in FOREIGN_IN_CODE
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)


def test_the_code_scan_reads_comments_docstrings_and_messages_not_names(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""A module.\n\nLike the seed\'s lib/database.js."""\n'
        "getDbClient = resetForTesting = None\n"  # code: names, not prose
        "def reset():  # resetForTesting()\n"
        '    raise ValueError(f"see {1} MEASUREMENTS.md")\n'
    )
    hits = [
        (number, why)
        for number, line in read_text_of_code(sample)
        for pattern, why in FOREIGN_IN_CODE
        if pattern.search(line)
    ]
    assert sorted({number for number, _ in hits}) == [3, 5, 6]
    assert code_files()[0].is_relative_to(ROOT / "examples")
    assert {p.suffix for p in code_files()} == {".py", ".ini"}
