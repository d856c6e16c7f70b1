"""Settings: one frozen dataclass, built in one function from CLI, environment and ini.

Precedence is command line > environment (``DBSCOPE_<NAME>``) > config file > default,
decided with ``is None`` so a falsy command-line value still wins. Every parse error
names the setting, the value and where it came from.

A ``dbscope_*`` name that is not a setting (in a config file, or given with ``-o``), a
misspelled ``--dbscope-*`` option and pytest-xdist's ``-n`` without pytest-xdist are
refused with what to write instead (:func:`check_setting_names`, :func:`check_arguments`).
"""

from __future__ import annotations

import configparser
import difflib
import importlib.util
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .backends import registry
from .errors import ConfigError
from .strategies import STRATEGIES
from .urls import URL_FORMATS, URL_PARTS, BackendURL, mask_password, no_part, parse_backend_url

__all__ = [
    "SETTINGS",
    "Config",
    "EnvVarSpec",
    "Setting",
    "build_config",
    "check_arguments",
    "check_setting_names",
    "config_file_names",
    "looks_like_ours",
]

#: What an environment variable of ``dbscope_env_var`` can hold: the whole URL in one of three
#: forms, or one part of it, for an app that builds its URL from parts (``POSTGRES_SERVER:host``)
ENV_FORMATS = URL_FORMATS + URL_PARTS
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: Variables dbscope itself reads besides the settings' own (``DBSCOPE_URL``, ...): debug
#: logging, the PostgreSQL clone strategy.
_OWN_EXTRA = ("DBSCOPE_DEBUG", "DBSCOPE_PG_CLONE_STRATEGY")
#: How list settings split a value (a command-line ``-o``, an environment variable, each
#: line of a config file): names at commas and whitespace; NAME=VALUE pairs at commas and
#: line ends, and at whitespace before the next NAME=, since a value may hold spaces.
_NAMES_SPLIT = r"[,\s]+"
_PAIRS_SPLIT = r"[,\n]|\s+(?=[A-Za-z_][A-Za-z0-9_]*\s*=)"


@dataclass(frozen=True)
class EnvVarSpec:
    """An environment variable that receives the scope's URL in one format, or one part of it (``host``, ...)."""

    name: str
    format: str = "sqlalchemy"


@dataclass(frozen=True)
class Config:
    """Every dbscope setting, resolved and validated.

    ``url`` is always a :class:`~dbscope.urls.BackendURL`, parsed once when the Config is
    made: a ``str`` equal to the URL as given, carrying its parts and its backend. (A
    plain string given to the constructor or to ``dataclasses.replace`` is parsed then.)
    """

    url: str = "sqlite://"
    migrations: str | None = None
    seed: str | None = None
    strategy: str = "clone"
    env_vars: tuple[EnvVarSpec, ...] = (EnvVarSpec("DATABASE_URL"),)
    unset_env: tuple[str, ...] = ()
    set_env: tuple[tuple[str, str], ...] = ()
    reset_modules: tuple[str, ...] = ()
    reset_hooks: tuple[str, ...] = ()
    app_engines: tuple[str, ...] = ()
    app_sessions: tuple[str, ...] = ()
    autouse: bool = False
    close_timeout: float = 5.0
    slow_test_s: float = 5.0
    memory_growth_mb: float = 50.0
    allow_remote: bool = False
    rebuild: bool = False
    keep_failed: bool = False
    report: str | None = None
    html: str | None = None
    fail_on_leak: bool = False
    baseline: str | None = None
    save_baseline: str | None = None
    base_dir: str | None = field(default=None, compare=False)
    #: where each setting given came from (field name -> "the DBSCOPE_SEED environment
    #: variable", ...), so later errors (a missing migrations path) can name it too
    origins: Mapping[str, str] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.url, BackendURL):
            object.__setattr__(self, "url", parse_backend_url(self.url))

    @property
    def backend_url(self) -> BackendURL:
        """``url``, typed as what it is: the parsed URL."""
        assert isinstance(self.url, BackendURL)
        return self.url

    def origin(self, name: str) -> str:
        """Where the setting ``name`` (a field name) came from; "the default" when not given."""
        return self.origins.get(name, "the default")

    def __repr__(self) -> str:
        # a NAME=VALUE pair is masked as written (POSTGRES_PASSWORD=***), so a bare password is too
        pairs = tuple((name, mask_password(f"{name}={value}").partition("=")[2]) for name, value in self.set_env)
        shown = ", ".join(
            f"{f.name}={mask_password(str(getattr(self, f.name)))!r}"
            if f.name == "url"
            else f"{f.name}={mask_password(repr(pairs if f.name == 'set_env' else getattr(self, f.name)))}"
            for f in fields(self)
            if f.name != "origins"
        )
        return f"Config({shown})"


# --- parsers: each takes the raw value and returns the typed one or raises ValueError ---


def _text(raw: Any) -> str | None:
    value = str(raw).strip()
    return value or None


def _items(raw: Any, separators: str = _NAMES_SPLIT) -> list[str]:
    """The items of a list setting: a list (a config file's lines, a TOML array) or one string, each split."""
    lines = [str(p) for p in raw] if isinstance(raw, (list, tuple)) else [str(raw)]
    return [part.strip() for line in lines for part in re.split(separators, line) if part.strip()]


def _url(raw: Any) -> BackendURL:
    return parse_backend_url(str(raw))


def _strategy(raw: Any) -> str:
    value = str(raw).strip().lower()
    if value not in STRATEGIES:
        raise ValueError(f"must be one of {', '.join(STRATEGIES)}")
    return value


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _positive_float(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError("must be a number") from None
    if math.isnan(value):
        raise ValueError("must be a number")
    if not value > 0:
        raise ValueError("must be greater than 0")
    if math.isinf(value):  # as a timeout it would overflow thread and lock waits
        raise ValueError("must be finite")
    return value


def _not_own(name: str) -> None:
    """dbscope (and every xdist worker it starts) reads these: no setting may write or delete one."""
    if name.upper() in _OWN_EXTRA or any(name.upper() == s.env_name for s in SETTINGS):
        raise ValueError(f"{name} is a variable dbscope reads its own settings from; it cannot be changed this way")


def _env_names(raw: Any) -> tuple[str, ...]:
    names = tuple(_items(raw))
    for name in names:
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        _not_own(name)
    return names


def _env_vars(raw: Any) -> tuple[EnvVarSpec, ...]:
    specs: list[EnvVarSpec] = []
    for item in _items(raw):
        name, _, fmt = item.partition(":")
        name, fmt = name.strip(), (fmt.strip().lower() or "sqlalchemy")
        if not _ENV_NAME.match(name):
            raise ValueError(f"{name!r} is not an environment variable name")
        if fmt not in ENV_FORMATS:
            raise ValueError(f"format {fmt!r} of {name} must be one of {', '.join(ENV_FORMATS)}")
        _not_own(name)
        if any(s.name == name for s in specs):
            raise ValueError(f"{name} is given twice")
        specs.append(EnvVarSpec(name, fmt))
    return tuple(specs)


def _assignments(raw: Any) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for item in _items(raw, _PAIRS_SPLIT):
        name, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.match(name.strip()):
            raise ValueError(f"{item!r} is not NAME=VALUE")
        _not_own(name.strip())
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def _hooks(raw: Any) -> tuple[str, ...]:
    hooks = tuple(_items(raw))
    for hook in hooks:
        if ":" not in hook:
            raise ValueError(f"{hook!r} is not module:callable")
    return hooks


def _attributes(raw: Any) -> tuple[str, ...]:
    specs = tuple(_items(raw))
    for spec in specs:
        module, sep, attr = spec.partition(":")
        if not (sep and module and attr):
            raise ValueError(f"{spec!r} is not module:attr")
    return specs


@dataclass(frozen=True)
class Setting:
    """One setting: its name, help text (shared by CLI and ini), parser and CLI form."""

    name: str
    help: str
    parse: Callable[[Any], Any]
    cli: bool = True
    ini: bool = True
    flag: bool = False  # a CLI switch without a value
    listish: bool = False

    @property
    def ini_name(self) -> str:
        return f"dbscope_{self.name}"

    @property
    def option(self) -> str:
        return "--dbscope-" + self.name.replace("_", "-")

    @property
    def env_name(self) -> str:
        return f"DBSCOPE_{self.name.upper()}"


SETTINGS: tuple[Setting, ...] = (
    Setting("url", f"database URL (default sqlite://): {registry.usage()}", _url),
    Setting("migrations", "directory of .sql files, one .sql file, or package.module:callable", _text),
    Setting("seed", "seed data applied after the migrations, in the same forms", _text),
    Setting("strategy", f"isolation strategy: {', '.join(STRATEGIES)} (default clone)", _strategy),
    Setting(
        "env_var",
        "environment variables set to the scope's URL: NAME or NAME:sqlalchemy|async|dsn, or to one "
        "part of it: NAME:host|port|user|password|database (a server), NAME:path (SQLite files); "
        "separated by spaces, commas or lines",
        _env_vars,
        cli=False,
        listish=True,
    ),
    Setting(
        "unset_env",
        "environment variables deleted at session start, separated by spaces, commas or lines",
        _env_names,
        cli=False,
        listish=True,
    ),
    Setting(
        "set_env",
        "NAME=VALUE pairs set at session start, separated by commas, lines or spaces before a NAME=",
        _assignments,
        cli=False,
        listish=True,
    ),
    Setting(
        "reset_modules",
        "module names purged from sys.modules at each scope boundary",
        lambda r: tuple(_items(r)),
        cli=False,
        listish=True,
    ),
    Setting("reset_hooks", "module:callable run at each scope boundary", _hooks, cli=False, listish=True),
    Setting(
        "app_engines",
        "module:attr of the app's SQLAlchemy engines (sync or async), joined to each test's transaction "
        "under the rollback strategy",
        _attributes,
        cli=False,
        listish=True,
    ),
    Setting(
        "app_sessions",
        "module:attr of the app's sessionmakers (sync or async), bound to each test's connection "
        "under the rollback strategy",
        _attributes,
        cli=False,
        listish=True,
    ),
    Setting("autouse", "give every test a scope, even without a dbscope fixture", _bool, flag=True),
    Setting("close_timeout", "seconds each connection close may take (default 5)", _positive_float),
    Setting("slow_test_s", "a test slower than this many seconds is reported (default 5)", _positive_float),
    Setting("memory_growth_mb", "memory growth in MB over which a test is reported (default 50)", _positive_float),
    Setting("allow_remote", "allow a database server that is not on this machine", _bool, flag=True),
    Setting("rebuild", "ignore cached templates and build them again", _bool, flag=True, ini=False),
    Setting("keep_failed", "keep a failed test's database and print its URL", _bool, flag=True),
    Setting("report", "write the isolation report as JSON to this path", _text),
    Setting("html", "write the isolation report as a self-contained HTML page", _text),
    Setting("fail_on_leak", "fail the run when a test leaks a connection or scope", _bool, flag=True),
    Setting("baseline", "compare the run with this saved baseline", _text),
    Setting("save_baseline", "save this run's figures as a baseline", _text),
)

_FIELD_FOR = {"env_var": "env_vars"}


def build_config(
    *,
    cli: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    ini: Mapping[str, Any] | None = None,
    ini_source: str = "config file",
    base_dir: str | None = None,
    ini_origins: Mapping[str, str] | None = None,
) -> Config:
    """Resolve every setting (CLI > env > ini > default) into one validated Config.

    ``cli`` and ``ini`` map setting names (``url``, ``env_var``, ...) to raw values, None
    when not given. ``env`` is the process environment. An ini value comes from
    ``dbscope_<name> in <ini_source>`` unless ``ini_origins`` says otherwise (pytest's
    ``-o dbscope_<name>=...``: ``-o dbscope_<name> on the command line``).
    """
    cli, env, ini = cli or {}, env or {}, ini or {}
    values: dict[str, Any] = {}
    given: dict[str, str] = {}  # setting name -> "dbscope_x = 'raw' (from origin)", for clashes
    origins: dict[str, str] = {}
    for setting in SETTINGS:
        raw, origin = _pick(setting, cli, env, ini, ini_source, ini_origins or {})
        if raw is None:
            continue
        text = ", ".join(str(item) for item in raw) if isinstance(raw, (list, tuple)) else str(raw)  # ini lines
        shown = f"{setting.ini_name} = {mask_password(text)!r} (from {origin})"
        try:
            values[_FIELD_FOR.get(setting.name, setting.name)] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{shown} is not valid: {mask_password(str(exc))}") from None
        given[setting.name] = shown
        origins[_FIELD_FOR.get(setting.name, setting.name)] = origin
    if "env_vars" in values and not values["env_vars"]:
        values["env_vars"] = ()
    config = Config(base_dir=base_dir, origins=origins, **values)
    _check_env_clashes(config, given)
    _check_env_parts(config, given)
    return config


def _check_env_parts(config: Config, given: Mapping[str, str]) -> None:
    """Refuse a variable that takes a part of the URL its databases do not have (``NAME:host`` with ``sqlite://``).

    The URL's registry entry says which parts its databases have; only a given
    ``dbscope_env_var`` can name a part (the default is ``DATABASE_URL``, a whole URL).
    """
    url = config.backend_url
    for spec in config.env_vars:
        if spec.format in URL_PARTS and spec.format not in url.parts:
            origin = f"from {config.origin('url')}" if "url" in config.origins else "the default"
            raise ConfigError(
                f"{given.get('env_var', 'dbscope_env_var')} is not valid: {spec.name}:{spec.format} cannot be set, "
                f"as dbscope_url {url.masked!r} ({origin}) is {url.entry.title}, whose databases have "
                f"{no_part(spec.format, url.parts, spec.name)}"
            )


def _check_env_clashes(config: Config, given: Mapping[str, str]) -> None:
    """Refuse a variable given two values that contradict each other.

    ``dbscope_env_var`` together with ``dbscope_unset_env`` is allowed on purpose: the
    shell's value (a production DATABASE_URL) is deleted for the session and the
    variable exists only inside scopes, holding the scope's URL.
    """
    env_vars = {spec.name for spec in config.env_vars}
    fixed = {name for name, _ in config.set_env}
    clashes = (
        ("env_var", "set_env", env_vars & fixed, "dbscope sets it to (a part of) each scope's URL during every test"),
        ("set_env", "unset_env", fixed & set(config.unset_env), "it cannot be both set and deleted"),
    )
    for first, second, names, why in clashes:
        if names:
            # only dbscope_env_var has a default that can clash
            default = f"dbscope_env_var = {', '.join(sorted(env_vars))!r} (the default)"
            shown = [given.get(name, default) for name in (first, second)]
            raise ConfigError(
                f"{shown[0]} and {shown[1]} both name {', '.join(sorted(names))}: {why}; "
                "remove it from one of the two settings"
            )


def _pick(
    setting: Setting,
    cli: Mapping[str, Any],
    env: Mapping[str, str],
    ini: Mapping[str, Any],
    ini_source: str,
    ini_origins: Mapping[str, str],
) -> tuple[Any, str]:
    value = cli.get(setting.name)
    if value is not None and setting.cli:
        return value, f"{setting.option} on the command line"
    value = env.get(setting.env_name)
    if value is not None and value != "":
        return value, f"the {setting.env_name} environment variable"
    value = ini.get(setting.name)
    if value is not None and value != "" and value != [] and setting.ini:
        return value, ini_origins.get(setting.name) or f"{setting.ini_name} in {ini_source}"
    return None, "default"


# --- names: a misspelled setting or option is a usage error, not a setting silently ignored ---

#: the options of pytest-xdist a user gives; without xdist, pytest knows none of them
_XDIST_OPTIONS = ("--numprocesses", "--maxprocesses", "--dist", "--tx")
#: a name that is meant for dbscope: the prefix of every setting, in any case, with ``_`` or ``-``
_OUR_PREFIX = re.compile(r"^dbscope[_-]", re.IGNORECASE)


class _CaseKeepingParser(configparser.ConfigParser):
    """configparser, keeping the case of names as written (``DBSCOPE_URL`` in pytest.ini is not a setting)."""

    def optionxform(self, optionstr: str) -> str:
        return optionstr


def config_file_names(path: Path) -> list[str]:
    """The names given in pytest's configuration file ``path``, from where pytest reads them.

    A ``.toml`` file: ``[tool.pytest]`` and ``[tool.pytest.ini_options]``, and (except in
    pyproject.toml) ``[pytest]``; a ``.cfg`` file (setup.cfg): ``[tool:pytest]``; any other
    (pytest.ini, tox.ini): ``[pytest]``. A file that cannot be read gives no names: pytest
    has refused it already.
    """
    try:
        if path.suffix == ".toml":
            document = tomllib.loads(path.read_text(encoding="utf-8"))
            tool = document.get("tool", {})
            pytest_tool = tool.get("pytest", {}) if isinstance(tool, dict) else {}
            tables = [pytest_tool, pytest_tool.get("ini_options") if isinstance(pytest_tool, dict) else None]
            if path.name != "pyproject.toml":
                tables.append(document.get("pytest"))
            return [name for table in tables if isinstance(table, dict) for name in table if name != "ini_options"]
        parser = _CaseKeepingParser(interpolation=None, strict=False)
        parser.read(path, encoding="utf-8")
    except (OSError, ValueError, configparser.Error):
        return []
    section = "tool:pytest" if path.suffix == ".cfg" else "pytest"
    return parser.options(section) if parser.has_section(section) else []


def check_setting_names(given: Iterable[tuple[str, str]]) -> None:
    """Refuse every ``dbscope_*`` name that is not a setting, with the setting it is closest to.

    ``given`` holds (name, where) pairs: ``("dbscope_migration", "in config file pytest.ini")``,
    ``("dbscope_url", "given with -o on the command line")``. Names without dbscope's prefix
    are left to pytest. Raises ConfigError, one line per bad name.
    """
    valid = [s.ini_name for s in SETTINGS if s.ini]
    problems = [_unknown_name(name, where) for name, where in given if _OUR_PREFIX.match(name) and name not in valid]
    if problems:
        raise ConfigError("\n".join(problems))


def _unknown_name(name: str, where: str) -> str:
    wanted = name.lower().replace("-", "_").removeprefix("dbscope_")
    for setting in SETTINGS:
        if setting.name == wanted and not setting.ini:
            return (
                f"{name} {where} cannot be set in a config file: give {setting.option} on the command line, "
                f"or set the {setting.env_name} environment variable"
            )
    close = difflib.get_close_matches(wanted, [s.name for s in SETTINGS if s.ini], n=1)
    if close:
        return f"unknown setting {name} {where}: did you mean dbscope_{close[0]}?"
    listed = ", ".join(s.ini_name for s in SETTINGS if s.ini)
    return f"unknown setting {name} {where}; the settings are {listed} (pytest --help describes each)"


def looks_like_ours(arg: str) -> bool:
    """Whether a command-line argument is a dbscope or pytest-xdist option (to check only those)."""
    option = arg.partition("=")[0]
    return option.startswith("--dbscope") or option in _XDIST_OPTIONS or (option[:2] == "-n")


def check_arguments(unknown: Sequence[str], *, xdist_blocked: bool) -> None:
    """Explain an argument pytest does not know that is a misspelled dbscope option or needs pytest-xdist.

    ``unknown``: the arguments pytest's parser left over; ``xdist_blocked``: whether
    ``-p no:xdist`` was given. Raises ConfigError; other unknown arguments are left to pytest.
    """
    for arg in unknown:
        option = arg.partition("=")[0]
        if option.startswith("--dbscope"):
            valid = [s.option for s in SETTINGS if s.cli]
            close = difflib.get_close_matches(option, valid, n=1)
            hint = f"did you mean {close[0]}?" if close else f"the options are {', '.join(valid)}"
            raise ConfigError(f"unknown option {option} on the command line: {hint}")
        if option in _XDIST_OPTIONS or option[:2] == "-n":
            option = option if option.startswith("--") else "-n"
            raise ConfigError(_xdist_missing(option, blocked=xdist_blocked))


def _xdist_missing(option: str, *, blocked: bool) -> str:
    if importlib.util.find_spec("xdist") is None:
        return (
            f"{option} needs pytest-xdist, which is not installed: pip install pytest-xdist "
            f"(or leave out {option} to run the tests in one process)"
        )
    if blocked:
        return f"{option} needs pytest-xdist, which -p no:xdist disabled: leave out one of the two"
    return f"{option} needs pytest-xdist, which is installed but not loaded (plugin autoloading is off): add -p xdist"
