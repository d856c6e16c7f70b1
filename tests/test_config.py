"""build_config: CLI > environment > config file > default, parsing, and errors that say where."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from dbscope.config import SETTINGS, Config, EnvVarSpec, build_config
from dbscope.errors import ConfigError, DbscopeError

ORIGINS = {
    "cli": "{option} on the command line",
    "env": "the {env_name} environment variable",
    "ini": "{ini_name} in config file",
}


def setting(name: str) -> Any:
    return next(s for s in SETTINGS if s.name == name)


def config_from(source: str, name: str, raw: Any) -> Config:
    """build_config with one raw value given on the command line, in the environment or in the ini."""
    if source == "cli":
        return build_config(cli={name: raw})
    if source == "env":
        return build_config(env={setting(name).env_name: raw})
    return build_config(ini={name: raw})


def origin(source: str, name: str) -> str:
    s = setting(name)
    return ORIGINS[source].format(option=s.option, env_name=s.env_name, ini_name=s.ini_name)


# --- defaults and names ------------------------------------------------------------


def test_nothing_given_gives_the_defaults() -> None:
    config = build_config()

    assert config == Config()
    assert config.url == "sqlite://"
    assert config.strategy == "clone"
    assert config.env_vars == (EnvVarSpec("DATABASE_URL", "sqlalchemy"),)
    assert (config.close_timeout, config.slow_test_s, config.memory_growth_mb) == (5.0, 5.0, 50.0)
    assert not any([config.autouse, config.allow_remote, config.rebuild, config.keep_failed, config.fail_on_leak])
    assert (config.migrations, config.seed, config.report, config.html) == (None, None, None, None)


def test_a_setting_has_one_name_per_source() -> None:
    close_timeout = setting("close_timeout")

    assert close_timeout.option == "--dbscope-close-timeout"
    assert close_timeout.env_name == "DBSCOPE_CLOSE_TIMEOUT"
    assert close_timeout.ini_name == "dbscope_close_timeout"


def test_a_config_is_frozen() -> None:
    config = build_config()

    with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field 'url'"):
        config.url = "postgresql://localhost/db"  # type: ignore[misc]


def test_base_dir_is_kept_but_not_compared() -> None:
    config = build_config(base_dir="/project")

    assert config.base_dir == "/project"
    assert config == build_config()


# --- every setting parses ----------------------------------------------------------

EVERY_SETTING: dict[str, tuple[str, str, Any]] = {
    # setting: (raw value in DBSCOPE_<NAME>, Config field, parsed value)
    "url": (" sqlite:///dbs ", "url", "sqlite:///dbs"),
    "migrations": (" migrations/ ", "migrations", "migrations/"),
    "seed": ("seed.sql", "seed", "seed.sql"),
    "strategy": ("Reset", "strategy", "reset"),
    "env_var": (
        "DATABASE_URL, ASYNC_DATABASE_URL:async\nPG_DSN:DSN",
        "env_vars",
        (EnvVarSpec("DATABASE_URL"), EnvVarSpec("ASYNC_DATABASE_URL", "async"), EnvVarSpec("PG_DSN", "dsn")),
    ),
    "unset_env": ("AWS_SECRET_ACCESS_KEY, STRIPE_KEY", "unset_env", ("AWS_SECRET_ACCESS_KEY", "STRIPE_KEY")),
    "set_env": ("FEATURE_X=on, MODE = test,EMPTY=", "set_env", (("FEATURE_X", "on"), ("MODE", "test"), ("EMPTY", ""))),
    "reset_modules": ("myapp.settings\nmyapp.db", "reset_modules", ("myapp.settings", "myapp.db")),
    "reset_hooks": (
        "myapp.cache:clear, myapp.db:Engine.reset",
        "reset_hooks",
        ("myapp.cache:clear", "myapp.db:Engine.reset"),
    ),
    "app_engines": (
        "myapp.db:engine myapp.db:async_engine",
        "app_engines",
        ("myapp.db:engine", "myapp.db:async_engine"),
    ),
    "app_sessions": ("myapp.db:Session.factory", "app_sessions", ("myapp.db:Session.factory",)),
    "autouse": ("true", "autouse", True),
    "close_timeout": ("2.5", "close_timeout", 2.5),
    "slow_test_s": ("10", "slow_test_s", 10.0),
    "memory_growth_mb": ("0.5", "memory_growth_mb", 0.5),
    "allow_remote": ("yes", "allow_remote", True),
    "rebuild": ("1", "rebuild", True),
    "keep_failed": ("on", "keep_failed", True),
    "report": ("out/report.json", "report", "out/report.json"),
    "html": ("out/report.html", "html", "out/report.html"),
    "fail_on_leak": ("TRUE", "fail_on_leak", True),
    "baseline": ("baseline.json", "baseline", "baseline.json"),
    "save_baseline": ("new-baseline.json", "save_baseline", "new-baseline.json"),
}


def test_the_table_below_covers_every_setting() -> None:
    assert set(EVERY_SETTING) == {s.name for s in SETTINGS}


@pytest.mark.parametrize(
    ("name", "raw", "field", "expected"), [(n, *v) for n, v in EVERY_SETTING.items()], ids=EVERY_SETTING
)
def test_every_setting_parses_from_its_environment_variable(name: str, raw: str, field: str, expected: Any) -> None:
    config = build_config(env={setting(name).env_name: raw})

    assert getattr(config, field) == expected


def test_list_settings_also_take_the_lists_of_a_config_file() -> None:
    config = build_config(
        ini={
            "env_var": ["DATABASE_URL", "READ_URL:dsn"],
            "unset_env": ["AWS_SECRET_ACCESS_KEY"],
            "set_env": ["FEATURE_X=on"],
            "reset_modules": ["myapp.settings", " "],
            "reset_hooks": ["myapp.cache:clear"],
        }
    )

    assert config.env_vars == (EnvVarSpec("DATABASE_URL"), EnvVarSpec("READ_URL", "dsn"))
    assert config.unset_env == ("AWS_SECRET_ACCESS_KEY",)
    assert config.set_env == (("FEATURE_X", "on"),)
    assert config.reset_modules == ("myapp.settings",)
    assert config.reset_hooks == ("myapp.cache:clear",)


def test_a_value_with_an_equals_sign_keeps_everything_after_the_first_one() -> None:
    config = build_config(ini={"set_env": "QUERY=a=b"})

    assert config.set_env == (("QUERY", "a=b"),)


def test_an_env_var_list_of_only_separators_sets_no_variable() -> None:
    assert build_config(ini={"env_var": ","}).env_vars == ()


@pytest.mark.parametrize("raw", ["1", "true", "Yes", "ON", True])
def test_true_spellings(raw: Any) -> None:
    assert build_config(ini={"autouse": raw}).autouse is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "OFF", False])
def test_false_spellings(raw: Any) -> None:
    assert build_config(ini={"autouse": raw}).autouse is False


def test_numbers_are_taken_as_numbers_too() -> None:
    assert build_config(ini={"close_timeout": 3, "slow_test_s": 0.25}).close_timeout == 3.0
    assert build_config(ini={"slow_test_s": 0.25}).slow_test_s == 0.25


# --- precedence ----------------------------------------------------------------------

PRECEDENCE = [
    # setting, (cli, env, ini) raw values, Config field, (parsed cli, env, ini)
    (
        "url",
        ("sqlite:///cli", "sqlite:///env", "sqlite:///ini"),
        "url",
        ("sqlite:///cli", "sqlite:///env", "sqlite:///ini"),
    ),
    ("strategy", ("rollback", "reset", "clone"), "strategy", ("rollback", "reset", "clone")),
    ("close_timeout", (1, "2", "3"), "close_timeout", (1.0, 2.0, 3.0)),
    ("migrations", ("cli/", "env/", "ini/"), "migrations", ("cli/", "env/", "ini/")),
    ("keep_failed", (True, "false", "true"), "keep_failed", (True, False, True)),
]


@pytest.mark.parametrize(("name", "raw", "field", "parsed"), PRECEDENCE, ids=[p[0] for p in PRECEDENCE])
def test_the_command_line_beats_the_environment_which_beats_the_config_file(
    name: str, raw: tuple[Any, Any, Any], field: str, parsed: tuple[Any, Any, Any]
) -> None:
    cli, env, ini = {name: raw[0]}, {setting(name).env_name: raw[1]}, {name: raw[2]}

    assert getattr(build_config(cli=cli, env=env, ini=ini), field) == parsed[0]
    assert getattr(build_config(env=env, ini=ini), field) == parsed[1]
    assert getattr(build_config(ini=ini), field) == parsed[2]
    assert getattr(build_config(), field) == getattr(Config(), field)


def test_a_false_value_on_the_command_line_still_wins() -> None:
    config = build_config(
        cli={"autouse": False, "keep_failed": False},
        env={"DBSCOPE_AUTOUSE": "1"},
        ini={"keep_failed": True},
    )

    assert config.autouse is False
    assert config.keep_failed is False


def test_a_flag_not_given_on_the_command_line_falls_through_to_the_environment() -> None:
    config = build_config(
        cli={"autouse": None, "url": None}, env={"DBSCOPE_AUTOUSE": "1"}, ini={"url": "sqlite:///ini"}
    )

    assert config.autouse is True
    assert config.url == "sqlite:///ini"


def test_an_empty_environment_variable_counts_as_not_set() -> None:
    config = build_config(env={"DBSCOPE_STRATEGY": ""}, ini={"strategy": "reset"})

    assert config.strategy == "reset"


def test_empty_config_file_values_count_as_not_set() -> None:
    config = build_config(ini={"strategy": "", "env_var": [], "migrations": None})

    assert config == Config()


def test_settings_without_a_command_line_option_ignore_the_command_line() -> None:
    config = build_config(cli={"env_var": "OTHER_URL"}, env={"DBSCOPE_ENV_VAR": "ENV_URL"})

    assert config.env_vars == (EnvVarSpec("ENV_URL"),)


def test_rebuild_is_never_read_from_the_config_file() -> None:
    assert build_config(ini={"rebuild": True}).rebuild is False
    assert build_config(env={"DBSCOPE_REBUILD": "1"}).rebuild is True
    assert build_config(cli={"rebuild": True}).rebuild is True


def test_other_environment_variables_are_ignored() -> None:
    assert build_config(env={"DATABASE_URL": "postgresql://prod/db", "DBSCOPE_DEBUG": "isolation"}) == Config()


# --- errors name the setting, the value and where it came from ----------------------

ERRORS = [
    # source, setting, raw value, reason (a regex)
    ("cli", "strategy", "fork", r"must be one of clone, reset, rollback, worker"),
    ("env", "strategy", "fork", r"must be one of clone, reset, rollback, worker"),
    ("env", "close_timeout", "-1", r"must be greater than 0"),
    ("ini", "close_timeout", "0", r"must be greater than 0"),
    ("cli", "close_timeout", "soon", r"must be a number"),
    ("ini", "memory_growth_mb", "fifty", r"must be a number"),
    ("env", "autouse", "maybe", r"must be true or false"),
    ("ini", "env_var", "1DATABASE_URL", r"'1DATABASE_URL' is not an environment variable name"),
    (
        "env",
        "env_var",
        "DATABASE_URL:jdbc",
        r"format 'jdbc' of DATABASE_URL must be one of sqlalchemy, async, dsn, host, port, user, password, database, "
        r"path$",
    ),
    ("ini", "env_var", "DATABASE_URL, DATABASE_URL:async", r"DATABASE_URL is given twice"),
    ("ini", "unset_env", "AWS-KEY", r"'AWS-KEY' is not an environment variable name"),
    ("ini", "set_env", "FEATURE_X", r"'FEATURE_X' is not NAME=VALUE"),
    ("env", "set_env", "=on", r"'=on' is not NAME=VALUE"),
    ("ini", "set_env", "MY-FLAG=on", r"'MY-FLAG=on' is not NAME=VALUE"),
    ("ini", "reset_hooks", "myapp.reset", r"'myapp.reset' is not module:callable"),
    ("ini", "app_engines", "myapp.db.engine", r"'myapp.db.engine' is not module:attr"),
    ("env", "app_sessions", "myapp.db:", r"'myapp.db:' is not module:attr"),
    ("cli", "url", "oracle://u@h/db", r"unknown URL scheme 'oracle' in 'oracle://u@h/db'; known schemes: "),
    (
        "env",
        "url",
        "postgresql://u@h:notaport/db",
        r"malformed URL 'postgresql://u@h:notaport/db': Port could not be cast to integer value as 'notaport'",
    ),
    ("ini", "url", "localhost/db", r"'localhost/db' is not a URL; use sqlite:// \(SQLite in memory\), "),
    ("ini", "url", "sqlite://host/db", r"'sqlite://host/db': a sqlite:// URL names a directory, not a host"),
]


@pytest.mark.parametrize(("source", "name", "raw", "reason"), ERRORS, ids=[f"{e[0]}-{e[1]}-{e[2]}" for e in ERRORS])
def test_a_bad_value_names_the_setting_the_value_and_where_it_came_from(
    source: str, name: str, raw: str, reason: str
) -> None:
    expected = re.escape(f"{setting(name).ini_name} = {raw!r} (from {origin(source, name)}) is not valid: ") + reason

    with pytest.raises(ConfigError, match=f"^{expected}"):
        config_from(source, name, raw)


def test_the_config_file_is_named_as_the_caller_says() -> None:
    with pytest.raises(ConfigError, match=re.escape("(from dbscope_strategy in pyproject.toml) is not valid")):
        build_config(ini={"strategy": "fork"}, ini_source="pyproject.toml")


def test_the_first_bad_value_is_reported_even_when_a_later_source_would_be_fine() -> None:
    with pytest.raises(
        ConfigError, match=re.escape("dbscope_strategy = 'fork' (from --dbscope-strategy on the command line)")
    ):
        build_config(cli={"strategy": "fork"}, env={"DBSCOPE_STRATEGY": "reset"})


def test_a_config_error_is_a_dbscope_error_and_a_value_error() -> None:
    with pytest.raises(ConfigError) as info:
        build_config(ini={"strategy": "fork"})

    assert isinstance(info.value, DbscopeError)
    assert isinstance(info.value, ValueError)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --- variables that take one part of the URL ---------------------------------------------

PARTS_OF = {
    # url: the parts its databases have
    "sqlite://": (),
    "sqlite+memory://": (),
    "sqlite:///dbs": ("path",),
    "sqlite+file://": ("path",),
    "postgresql://app:s3cr3t@localhost:5432/app": ("host", "port", "user", "password", "database"),
    "postgresql+proc://": ("host", "port", "user", "password", "database"),
}


@pytest.mark.parametrize("url", PARTS_OF)
def test_the_parts_of_a_url_come_from_its_registry_entry(url: str) -> None:
    assert build_config(ini={"url": url}).backend_url.parts == PARTS_OF[url]


def test_a_server_takes_its_url_in_parts_as_apps_build_it() -> None:
    config = build_config(
        ini={
            "url": "postgresql://app@localhost/app",
            "env_var": "POSTGRES_SERVER:host, POSTGRES_PORT:Port, POSTGRES_USER:user, POSTGRES_PASSWORD:password, "
            "POSTGRES_DB:database, DATABASE_URL",
        }
    )

    assert config.env_vars == (
        EnvVarSpec("POSTGRES_SERVER", "host"),
        EnvVarSpec("POSTGRES_PORT", "port"),
        EnvVarSpec("POSTGRES_USER", "user"),
        EnvVarSpec("POSTGRES_PASSWORD", "password"),
        EnvVarSpec("POSTGRES_DB", "database"),
        EnvVarSpec("DATABASE_URL"),
    )


def test_sqlite_files_take_the_path_of_the_database_file() -> None:
    config = build_config(ini={"url": "sqlite:///dbs", "env_var": "DB_PATH:path"})

    assert config.env_vars == (EnvVarSpec("DB_PATH", "path"),)


PART_ERRORS = [
    # (url given as, env_var, the message after "is not valid: ")
    (
        None,
        "DATABASE_URL, POSTGRES_SERVER:host",
        "POSTGRES_SERVER:host cannot be set, as dbscope_url 'sqlite://' (the default) is SQLite in memory, whose "
        "databases have no host; use POSTGRES_SERVER:sqlalchemy or POSTGRES_SERVER:dsn",
    ),
    (
        ("ini", "sqlite://"),
        "DB_FILE:path",
        "DB_FILE:path cannot be set, as dbscope_url 'sqlite://' (from dbscope_url in config file) is SQLite in "
        "memory, whose databases have no file path; use DB_FILE:sqlalchemy or DB_FILE:dsn",
    ),
    (
        ("env", "sqlite:///dbs"),
        "DB_HOST:host",
        "DB_HOST:host cannot be set, as dbscope_url 'sqlite:///dbs' (from the DBSCOPE_URL environment variable) is "
        "SQLite files, whose databases have no host; use DB_HOST:path, DB_HOST:sqlalchemy or DB_HOST:dsn",
    ),
    (
        ("cli", "sqlite:///dbs"),
        "DB_NAME:database",
        "DB_NAME:database cannot be set, as dbscope_url 'sqlite:///dbs' (from --dbscope-url on the command line) is "
        "SQLite files, whose databases have no database name; use DB_NAME:path, DB_NAME:sqlalchemy or DB_NAME:dsn",
    ),
    (
        ("env", "postgresql://app:s3cr3t@localhost/app"),
        "DB_PATH:path",
        "DB_PATH:path cannot be set, as dbscope_url 'postgresql://app:***@localhost/app' (from the DBSCOPE_URL "
        "environment variable) is a PostgreSQL server, whose databases have no file path; use DB_PATH:host, "
        "DB_PATH:port, DB_PATH:user, DB_PATH:password, DB_PATH:database, DB_PATH:sqlalchemy or DB_PATH:dsn",
    ),
    (
        ("ini", "postgresql+proc://"),
        "DB_PATH:path",
        "DB_PATH:path cannot be set, as dbscope_url 'postgresql+proc://' (from dbscope_url in config file) is a "
        "throwaway PostgreSQL cluster, whose databases have no file path; use DB_PATH:host, DB_PATH:port, "
        "DB_PATH:user, DB_PATH:password, DB_PATH:database, DB_PATH:sqlalchemy or DB_PATH:dsn",
    ),
]


@pytest.mark.parametrize(("url", "env_var", "reason"), PART_ERRORS, ids=[e[1] + "-" + str(e[0]) for e in PART_ERRORS])
def test_a_part_the_backend_does_not_have_names_the_setting_the_url_and_what_to_use(
    url: tuple[str, str] | None, env_var: str, reason: str
) -> None:
    given: dict[str, dict[str, str]] = {"cli": {}, "env": {}, "ini": {"env_var": env_var}}
    if url is not None:
        source, value = url
        given[source]["url"] = value
    env = {setting(name).env_name: value for name, value in given["env"].items()}

    with pytest.raises(ConfigError) as info:
        build_config(cli=given["cli"], env=env, ini=given["ini"])

    shown = f"dbscope_env_var = {env_var!r} (from dbscope_env_var in config file)"
    assert str(info.value) == f"{shown} is not valid: {reason}"
    assert "s3cr3t" not in str(info.value)


def test_a_part_the_backend_lacks_is_refused_by_the_library_too() -> None:
    from dbscope import IsolationManager

    with pytest.raises(ConfigError) as info:
        IsolationManager("sqlite://", env_vars=["H:host"])

    assert str(info.value) == (
        "dbscope_env_var = 'H:host' (from dbscope_env_var in IsolationManager arguments) is not valid: H:host cannot "
        "be set, as dbscope_url 'sqlite://' (from dbscope_url in IsolationManager arguments) is SQLite in memory, "
        "whose databases have no host; use H:sqlalchemy or H:dsn"
    )


def test_a_part_the_backend_lacks_stops_pytest_with_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".ini", pytest="[pytest]\ndbscope_env_var = POSTGRES_SERVER:host\n")
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-p", "no:randomly")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: dbscope: dbscope_env_var = 'POSTGRES_SERVER:host' (from dbscope_env_var in config file "
            "pytest.ini) is not valid: POSTGRES_SERVER:host cannot be set, as dbscope_url 'sqlite://' (the default) "
            "is SQLite in memory, whose databases have no host; use POSTGRES_SERVER:sqlalchemy or POSTGRES_SERVER:dsn"
        ]
    )


# --- passwords never shown ------------------------------------------------------------

SECRET_URLS = [
    "postgresql://u:secret@h:notaport/db",  # malformed port
    "postgres://u:secret@h:99999/db",  # port out of range
    "oracle://u:secret@h/db",  # unknown scheme
    "sqlite://u:secret@host/db",  # a SQLite URL with a host
]


@pytest.mark.parametrize("url", SECRET_URLS)
def test_a_bad_url_is_reported_with_its_password_masked(url: str) -> None:
    with pytest.raises(ConfigError, match=re.escape("u:***@")) as info:
        build_config(env={"DBSCOPE_URL": url})

    assert "secret" not in str(info.value)


def test_a_bad_set_env_pair_is_reported_with_its_password_masked() -> None:
    with pytest.raises(ConfigError, match=re.escape("u:***@")) as info:
        build_config(ini={"set_env": "REPLICA_URL postgresql://u:secret@h/db"})

    assert "secret" not in str(info.value)


def test_repr_of_a_config_masks_the_password_of_its_url() -> None:
    config = build_config(ini={"url": "postgresql://app:s3cr3t@localhost:5432/app_test"})

    assert config.url == "postgresql://app:s3cr3t@localhost:5432/app_test"
    assert "s3cr3t" not in repr(config)
    assert "url='postgresql://app:***@localhost:5432/app_test'" in repr(config)
    assert "s3cr3t" not in str(config)


def test_repr_of_a_config_masks_a_password_containing_an_at_sign() -> None:
    config = build_config(ini={"url": "postgresql://app:p@ss@localhost/app_test"})

    assert "ss@" not in repr(config)
    assert "url='postgresql://app:***@localhost/app_test'" in repr(config)


def test_repr_of_a_config_masks_passwords_in_set_env_values() -> None:
    config = build_config(ini={"set_env": "REDIS_URL=redis://:s3cr3t@localhost:6379/0"})

    assert "s3cr3t" not in repr(config)


def test_repr_of_a_config_masks_a_bare_password_given_to_a_password_variable() -> None:
    config = build_config(ini={"set_env": "POSTGRES_PASSWORD=s3cr3t, PGPASSWORD=s3cr3t, MODE=test"})

    assert "s3cr3t" not in repr(config)
    assert "set_env=(('POSTGRES_PASSWORD', '***'), ('PGPASSWORD', '***'), ('MODE', 'test'))" in repr(config)
    assert config.set_env[0] == ("POSTGRES_PASSWORD", "s3cr3t")  # masked when shown, not when used


def test_a_password_variable_named_twice_is_reported_with_its_value_masked() -> None:
    with pytest.raises(ConfigError) as info:
        build_config(
            ini={
                "url": "postgresql://app@localhost/app",
                "env_var": "POSTGRES_PASSWORD:password",
                "set_env": "POSTGRES_PASSWORD=s3cr3t",
            }
        )

    assert str(info.value) == (
        "dbscope_env_var = 'POSTGRES_PASSWORD:password' (from dbscope_env_var in config file) and "
        "dbscope_set_env = 'POSTGRES_PASSWORD=***' (from dbscope_set_env in config file) both name "
        "POSTGRES_PASSWORD: dbscope sets it to (a part of) each scope's URL during every test; remove it from one "
        "of the two settings"
    )


# --- list settings split the same way from every source ------------------------------


@pytest.mark.parametrize("raw", ["A B:async", "A,B:async", "A, B:async", "A\nB:async", ["A B:async"], ["A", "B:async"]])
@pytest.mark.parametrize("source", ["env", "ini"])
def test_a_list_setting_splits_at_whitespace_and_commas_from_every_source(source: str, raw: str | list[str]) -> None:
    if source == "env" and not isinstance(raw, str):
        return
    assert config_from(source, "env_var", raw).env_vars == (EnvVarSpec("A"), EnvVarSpec("B", "async"))


def test_set_env_splits_before_each_name_so_a_value_may_hold_spaces() -> None:
    config = build_config(ini={"set_env": ["A=1 B=two words", "C = x,D="]})

    assert config.set_env == (("A", "1"), ("B", "two words"), ("C", "x"), ("D", ""))


def test_the_url_is_parsed_once_into_the_config() -> None:
    from dbscope.urls import BackendURL, parse_backend_url

    config = build_config(ini={"url": " sqlite:///dbs "})
    assert isinstance(config.url, BackendURL) and config.url == "sqlite:///dbs"
    assert config.backend_url is config.url and parse_backend_url(config.url) is config.url
    assert config.backend_url.entry.title == "SQLite files"
    moved = dataclasses.replace(config, url="postgresql://u@localhost/db")  # parsed when the Config is made
    assert moved.backend_url.entry.title == "a PostgreSQL server"
    assert Config().backend_url.entry.title == "SQLite in memory"
    with pytest.raises(ConfigError, match="unknown URL scheme 'oracle'"):
        Config(url="oracle://u@h/db")


# --- -o on pytest's command line -----------------------------------------------------


def test_o_on_the_command_line_splits_a_list_setting_like_a_config_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(
        """
        import os

        def test_both_variables_hold_the_scope_url(db):
            assert os.environ["A"].startswith("sqlite://") and os.environ["B"].startswith("sqlite+aiosqlite://")
        """
    )
    for value in ("A B:async", "A,B:async"):
        pytester.runpytest("-o", f"dbscope_env_var={value}", "-p", "no:randomly").assert_outcomes(passed=1)


def test_a_bad_o_value_is_named_as_given_on_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml('[tool.pytest.ini_options]\ndbscope_env_var = "DATABASE_URL"\n')
    pytester.makepyfile("def test_nothing(): pass")
    result = pytester.runpytest("-o", "dbscope_env_var=A 1B:async", "-p", "no:randomly")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: dbscope: dbscope_env_var = 'A 1B:async' (from -o dbscope_env_var on the command line) "
            "is not valid: '1B' is not an environment variable name"
        ]
    )
    assert "pyproject.toml" not in "\n".join(result.errlines)
