import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import flask_migrate
import pytest

from hello import create_app
from hello.db import db

# Set (make test-unit does) to fail the PostgreSQL tests when the server cannot start, instead of
# skipping them as a developer's machine without PostgreSQL does.


@pytest.fixture
def app(tmp_path):
    return create_app(
        "testing",
        test_config={
            "SITE_NAME": "Test site",
            "DATABASE_URL": f"sqlite:///{tmp_path}/hello.sqlite",
        },
    )


@pytest.fixture
def client(app):
    return app.test_client()


class ThrowawayPostgreSQL:
    """A PostgreSQL cluster of Debian's server binaries in a temporary directory, for one session.

    It listens on a unix socket in that directory only, trusts whoever reaches the socket and
    skips fsync: nothing in it must outlive the tests. initdb refuses to run as root, so root runs
    the server as the postgres account (or nobody).
    """

    def __init__(self, bindir):
        self.bindir = bindir
        self.dir = tempfile.mkdtemp(prefix="hello-postgresql-")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.user = None
        if os.geteuid() == 0:
            self.user = next(
                (account for account in ("postgres", "nobody") if self._exists(account)), None
            )
            account = pwd.getpwnam(self.user)
            os.chown(self.dir, account.pw_uid, account.pw_gid)

    @staticmethod
    def _exists(account):
        try:
            pwd.getpwnam(account)
        except KeyError:
            return False
        return True

    def _run(self, *argv):
        return subprocess.run(
            [os.path.join(self.bindir, argv[0]), *argv[1:]],
            cwd=self.dir,
            user=self.user,
            group=pwd.getpwnam(self.user).pw_gid if self.user else None,
            extra_groups=[] if self.user else None,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def start(self):
        result = self._run(
            "initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
            "--no-sync",
        )  # fmt: skip
        if result.returncode == 0:
            options = (
                f"-c listen_addresses='' -c unix_socket_directories='{self.dir}'"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            result = self._run(
                "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-o", options, "start"
            )
        if result.returncode != 0:
            log = Path(self.log).read_text() if os.path.exists(self.log) else ""
            self.remove()
            raise RuntimeError(f"{result.args} failed:\n{result.stdout}{result.stderr}{log}")

    def stop(self):
        self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        self.remove()

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database):
        # As users write it (postgresql://), the driver is the app's choice.
        return f"postgresql://postgres@/{database}?host={self.dir}"

    def execute(self, statement):
        import psycopg

        with psycopg.connect(host=self.dir, user="postgres", dbname="postgres") as connection:
            connection.autocommit = True
            connection.execute(statement)

    def create_database(self):
        name = f"hello_{uuid.uuid4().hex[:12]}"
        self.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name):
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgresql_bindir():
    """The newest Debian PostgreSQL server's bin directory, or None."""
    initdbs = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    initdbs.sort(key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0)
    return os.path.dirname(initdbs[-1]) if initdbs else None


def unavailable(reason):
    # Never a skip: the PostgreSQL half of the tests is half the proof.
    pytest.fail(f"{reason}: install Debian's server binaries with scripts/ensure-postgresql.sh")


@pytest.fixture(scope="session")
def postgresql():
    bindir = postgresql_bindir()
    if bindir is None:
        unavailable("no PostgreSQL server in /usr/lib/postgresql/*/bin (Debian's postgresql)")
    server = ThrowawayPostgreSQL(bindir)
    try:
        server.start()
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
        unavailable(f"PostgreSQL did not start: {error}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty database of each kind the app supports, as DATABASE_URL names it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/hello.sqlite"
        return
    server = request.getfixturevalue("postgresql")
    name = server.create_database()
    yield server.url(name)
    server.drop_database(name)


def testing_app(database_url, **config):
    return create_app(
        "testing", test_config={"SITE_NAME": "Test site", "DATABASE_URL": database_url, **config}
    )


@pytest.fixture
def make_app():
    """Makes more apps (backends) on one database: make_app(database_url, **config)."""
    return testing_app


@pytest.fixture
def db_app(database_url):
    """The app on a database brought to the current schema by its migrations."""
    app = testing_app(database_url)
    with app.app_context():
        flask_migrate.upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def db_client(db_app):
    return db_app.test_client()
