"""The app's database: Flask-SQLAlchemy for the models, Flask-Migrate (Alembic) for the schema.

SQLite in the instance folder by default, so a single host needs nothing else; PostgreSQL (or any
database SQLAlchemy knows) from DATABASE_URL. The migrations ship inside the package, so every
release carries the scripts that bring the database to its schema: `flask --app hello db upgrade`.
"""

import contextlib
import os

from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

SQLITE_FILE_NAME = "hello.sqlite"
MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")

# The drivers installed with the app (requirements.txt), chosen for the schemes users write.
POSTGRESQL_DRIVER = "postgresql+psycopg"
POSTGRESQL_SCHEMES = ("postgres", "postgresql")


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
migrate = Migrate(directory=MIGRATIONS_DIR)


def database_uri(database_url, instance_path):
    """The SQLAlchemy URL for DATABASE_URL: the instance folder's SQLite file when it is empty.

    postgres:// (Heroku's and libpq's spelling) and postgresql:// get the psycopg 3 driver; a URL
    that names its driver (postgresql+psycopg2://, mysql+pymysql://) is kept as written.
    """
    if not database_url:
        return "sqlite:///" + os.path.join(instance_path, SQLITE_FILE_NAME)
    scheme, separator, rest = database_url.partition("://")
    if separator and scheme in POSTGRESQL_SCHEMES:
        return f"{POSTGRESQL_DRIVER}://{rest}"
    return database_url


def init_app(app):
    app.config.setdefault(
        "SQLALCHEMY_DATABASE_URI", database_uri(app.config["DATABASE_URL"], app.instance_path)
    )
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        # SQLite creates the file but not its directory. A deploy links the shared instance
        # folder in before anything runs; a checkout (flask run, flask db upgrade) has none yet.
        # Where it cannot be made (a read-only release without one), the pages that need no
        # database still serve.
        with contextlib.suppress(OSError):
            os.makedirs(app.instance_path, exist_ok=True)
    db.init_app(app)
    migrate.init_app(app, db)
