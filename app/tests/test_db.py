"""Which database the app uses, and its migrations, on SQLite and on PostgreSQL (conftest.py)."""

import os

import pytest
import sqlalchemy as sa

from hello import create_app
from hello.db import MIGRATIONS_DIR, database_uri, db

REAL_KEY = "x" * 32


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("", "sqlite:////srv/hello/shared/instance/hello.sqlite"),
        (
            "postgresql://app:secret@db.internal/app",
            "postgresql+psycopg://app:secret@db.internal/app",
        ),
        ("postgres://app@db.internal:5433/app", "postgresql+psycopg://app@db.internal:5433/app"),
        (
            "postgresql:///app?host=/run/postgresql",
            "postgresql+psycopg:///app?host=/run/postgresql",
        ),
        ("postgresql+psycopg2://app@db/app", "postgresql+psycopg2://app@db/app"),
        ("sqlite:////var/lib/hello/hello.sqlite", "sqlite:////var/lib/hello/hello.sqlite"),
    ],
)
def test_database_url_is_read_as_users_write_it(given, expected):
    assert database_uri(given, "/srv/hello/shared/instance") == expected


def test_sqlite_in_the_instance_folder_is_the_default(monkeypatch, tmp_path):
    instance = tmp_path / "instance"
    monkeypatch.setenv("APP_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("SECRET_KEY", REAL_KEY)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app("production")
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance}/hello.sqlite"
    # SQLite makes the file, not the folder: the factory does.
    assert instance.is_dir()


def test_database_url_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", REAL_KEY)
    monkeypatch.setenv("DATABASE_URL", "postgres://app:secret@db.internal/app")
    app = create_app("production")
    assert (
        app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://app:secret@db.internal/app"
    )


def test_the_migrations_ship_inside_the_package():
    import hello

    assert os.path.join(os.path.dirname(hello.__file__), "migrations") == MIGRATIONS_DIR
    assert os.path.isfile(
        os.path.join(MIGRATIONS_DIR, "versions", "0001_create_the_notes_table.py")
    )


def tables(app):
    with app.app_context():
        return set(sa.inspect(db.engine).get_table_names())


def test_upgrade_creates_the_schema_the_models_describe(database_url, make_app):
    app = make_app(database_url)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert tables(app) == {"alembic_version", "notes"}
    # Models and migrations agree: autogenerate finds nothing to add.
    result = runner.invoke(args=["db", "check"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        revision = db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
        db.engine.dispose()
    assert revision == "0001"


def test_upgrade_twice_changes_nothing_and_downgrade_removes_the_table(db_app):
    runner = db_app.test_cli_runner()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert "notes" in tables(db_app)
    result = runner.invoke(args=["db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    assert tables(db_app) == {"alembic_version"}
