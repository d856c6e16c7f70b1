"""The public names of dbscope: what users import, and the error tree they catch."""

import dbscope


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(dbscope.__all__) == sorted(
        [
            "BackendUnavailableError",
            "CleanupError",
            "Client",
            "ClientClosedError",
            "Config",
            "ConfigError",
            "DbscopeError",
            "EnvVarSpec",
            "IsolationManager",
            "MigrationError",
            "ResultSet",
            "Row",
            "Scope",
            "ScopeError",
            "Transaction",
            "__version__",
        ]
    )
    for name in dbscope.__all__:
        assert hasattr(dbscope, name), name


def test_every_error_derives_from_one_base_and_reports_the_public_module() -> None:
    errors = [
        dbscope.BackendUnavailableError,
        dbscope.CleanupError,
        dbscope.ClientClosedError,
        dbscope.ConfigError,
        dbscope.MigrationError,
        dbscope.ScopeError,
    ]
    for error in errors:
        assert issubclass(error, dbscope.DbscopeError)
        assert error.__module__ == "dbscope"


def test_the_manager_module_never_imports_pytest() -> None:
    import subprocess
    import sys

    code = "import sys, dbscope; dbscope.IsolationManager('sqlite://').close(); print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
