"""Settings of the example Django project: two databases, a custom user model, three apps.

DJANGO_DB=sqlite (the default), postgresql or mysql (MariaDB or MySQL) chooses the engine;
DJANGO_DB_PREFIX names the databases (the tests' databases are Django's test_ names, never
these ones).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
USE_TZ = True
ROOT_URLCONF = "project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "accounts",
    "catalog",
    "audit",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

ENGINE = os.environ.get("DJANGO_DB", "sqlite")
PREFIX = os.environ.get("DJANGO_DB_PREFIX", "djexample")
if ENGINE == "postgresql":
    _server = {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("DJANGO_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJANGO_DB_PORT", "5432"),
        "USER": os.environ.get("DJANGO_DB_USER", "postgres"),
    }
    DATABASES = {
        "default": {**_server, "NAME": PREFIX},
        "other": {**_server, "NAME": f"{PREFIX}_audit"},
    }
elif ENGINE == "mysql":  # MariaDB or MySQL, through PyMySQL (no C client library needed)
    import pymysql

    pymysql.install_as_MySQLdb()
    _server = {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ.get("DJANGO_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJANGO_DB_PORT", "3306"),
        "USER": os.environ.get("DJANGO_DB_USER", "root"),
        "PASSWORD": os.environ.get("DJANGO_DB_PASSWORD", ""),
        "OPTIONS": {"charset": "utf8mb4"},
    }
    DATABASES = {
        "default": {**_server, "NAME": PREFIX},
        "other": {**_server, "NAME": f"{PREFIX}_audit"},
    }
elif ENGINE == "sqlite":
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / f"{PREFIX}.sqlite3"},
        "other": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / f"{PREFIX}_audit.sqlite3"},
    }
else:
    raise RuntimeError(f"DJANGO_DB={ENGINE!r}: use sqlite, postgresql or mysql")

# the audit app's tables live in the "other" database, everything else in "default"
DATABASE_ROUTERS = ["project.routers.AuditRouter"]
