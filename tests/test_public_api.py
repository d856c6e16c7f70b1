"""The public names of dbscope: what users import, and the error tree they catch."""

import sys

import dbscope


def test_all_is_exactly_the_public_api() -> None:
    assert sorted(dbscope.__all__) == sorted(
        [
            "AsyncClient",
            "AsyncTransaction",
            "BackendUnavailableError",
            "CleanupError",
            "Client",
            "ClientClosedError",
            "Config",
            "ConfigError",
            "DbscopeError",
            "EnvVarSpec",
            "IsolationError",
            "IsolationManager",
            "JoinUnsupportedError",
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
        dbscope.IsolationError,
        dbscope.JoinUnsupportedError,
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


def test_errors_py_holds_every_error_class_and_the_command_ones_stay_importable_where_they_were() -> None:
    import importlib
    import inspect
    import pkgutil

    import dbscope.cli
    import dbscope.errors
    import dbscope.report

    for info in pkgutil.walk_packages(dbscope.__path__, "dbscope."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found = {
        obj
        for name, module in list(sys.modules.items())
        if name == "dbscope" or name.startswith("dbscope.")
        for obj in vars(module).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.partition(".")[0] == "dbscope"
    }
    in_errors = {obj for obj in vars(dbscope.errors).values() if inspect.isclass(obj)}
    assert found <= in_errors, found - in_errors
    for name in dbscope.errors.__all__:
        assert issubclass(getattr(dbscope.errors, name), dbscope.DbscopeError)
    assert dbscope.cli.UsageError is dbscope.errors.UsageError  # `from dbscope.cli import UsageError` still works
    assert dbscope.report.ReportError is dbscope.errors.ReportError
    assert "UsageError" not in dbscope.__all__ and "ReportError" not in dbscope.__all__  # the command's own
