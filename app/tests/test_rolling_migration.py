"""Version 2 of the app (molecule/shared/files/app-notes-v2 over a copy of app/) migrates a
version 1 database, on SQLite and on PostgreSQL, the way a rolling deploy does: `flask db upgrade`
from the new release's source while version 1 still serves. Version 1 must go on reading and
writing.

Version 1 runs in this process (it is app/); version 2 in subprocesses of its own source, as the
two releases run from two directories on the hosts.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from hello.db import db

APP_DIR = Path(__file__).resolve().parents[1]
OVERLAY_DIR = APP_DIR.parent / "molecule" / "shared" / "files" / "app-notes-v2"
VERSION_LINE = re.compile(r"^__version__ = .*$", re.MULTILINE)

# What version 2 does through its own client: sign in, add a note, list them all.
VERSION_2_SESSION = """
import json
from hello import create_app
client = create_app("testing").test_client()
client.post("/api/login", json={"name": "ann"})
added = client.post("/api/notes", json={"body": "from version 2"})
assert added.status_code == 201, added.data
print(json.dumps({
    "version": client.get("/healthz").get_json()["version"],
    "notes": client.get("/api/notes").get_json()["notes"],
}))
"""


def copy_source(destination):
    shutil.copytree(
        APP_DIR,
        destination,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "instance", "*.egg-info"),
    )


def make_version_2(destination):
    """A copy of app/ with the overlay's files over it and its version set to 2.0.0."""
    copy_source(destination)
    shutil.copytree(OVERLAY_DIR, destination, dirs_exist_ok=True)
    init = destination / "hello" / "__init__.py"
    init.write_text(VERSION_LINE.sub('__version__ = "2.0.0"', init.read_text(), count=1))
    return destination


def run(source, database_url, *argv):
    """A command of the release in `source`, as the role runs it: from its source directory."""
    environment = {
        **os.environ,
        "APP_ENV": "testing",
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(source),
    }
    result = subprocess.run(
        [sys.executable, *argv],
        cwd=source,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def columns(app):
    with app.app_context():
        return {column["name"] for column in sa.inspect(db.engine).get_columns("notes")}


def test_the_overlay_is_version_2_with_one_more_migration(tmp_path):
    source = make_version_2(tmp_path / "v2")
    versions = sorted(p.name for p in (source / "hello" / "migrations" / "versions").glob("*.py"))
    assert versions == ["0001_create_the_notes_table.py", "0002_add_the_note_author.py"]
    assert '__version__ = "2.0.0"' in (source / "hello" / "__init__.py").read_text()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_version_1_keeps_working_after_version_2_migrates(tmp_path, database_url, make_app):
    version_1 = tmp_path / "v1"
    copy_source(version_1)
    version_2 = make_version_2(tmp_path / "v2")

    # Version 1 deployed: its setup command, then a note written through it.
    run(version_1, database_url, "-m", "flask", "--app", "hello", "db", "upgrade")
    old = make_app(database_url)
    client = old.test_client()
    assert client.post("/api/notes", json={"body": "before the migration"}).status_code == 201
    assert "author" not in columns(old)

    # Version 2's release command; version 1 is still serving.
    result = run(version_2, database_url, "-m", "flask", "--app", "hello", "db", "upgrade")
    assert "Running upgrade 0001 -> 0002" in result.stderr
    assert "author" in columns(old)
    run(version_2, database_url, "-m", "flask", "--app", "hello", "db", "check")

    # Version 1 against the expanded schema: reads what was there, writes without an author.
    assert client.post("/api/notes", json={"body": "version 1 after it"}).status_code == 201
    listed = [note["body"] for note in client.get("/api/notes").get_json()["notes"]]
    assert listed == ["version 1 after it", "before the migration"]

    # Version 2 writes and shows the author; the rows written before have none.
    answer = json.loads(run(version_2, database_url, "-c", VERSION_2_SESSION).stdout)
    assert answer["version"] == "2.0.0"
    assert [(note["body"], note["author"]) for note in answer["notes"]] == [
        ("from version 2", "ann"),
        ("version 1 after it", None),
        ("before the migration", None),
    ]
    # And version 1 lists version 2's note too.
    assert client.get("/api/notes").get_json()["notes"][0]["body"] == "from version 2"
    with old.app_context():
        db.engine.dispose()
