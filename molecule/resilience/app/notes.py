"""A user's app, not the sample: a factory, SQLite in the instance folder, a setup command."""

import sqlite3
from pathlib import Path

from flask import Flask, current_app, g, jsonify, request

HERE = Path(__file__).parent
VERSION = (HERE / "VERSION").read_text().strip()


def get_db():
    if "db" not in g:
        g.db = sqlite3.connect(Path(current_app.instance_path) / "notes.sqlite3")
    return g.db


def close_db(_error=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


def create_app():
    if (HERE / "FACTORY_FAILS").exists():
        raise RuntimeError(f"notes {VERSION}: the factory refuses to build the app")
    app = Flask(__name__)
    app.teardown_appcontext(close_db)

    @app.cli.command("init-db")
    def init_db():
        Path(app.instance_path).mkdir(exist_ok=True)
        get_db().execute("CREATE TABLE IF NOT EXISTS notes (body TEXT NOT NULL)")

    if (HERE / "NO_ROUTES").exists():
        # Imports, builds and runs its setup command, then answers 404 to every URL: not serving.
        return app

    @app.get("/healthz")
    def healthz():
        if (HERE / "HEALTH_FAILS").exists():
            return jsonify(status="failing", version=VERSION), 500
        return jsonify(status="ok", version=VERSION)

    @app.get("/whoami")
    def whoami():
        # No ProxyFix here: what the role's Gunicorn configuration alone gives an app.
        return jsonify(remote_addr=request.remote_addr, scheme=request.scheme)

    @app.get("/notes")
    def count_notes():
        (count,) = get_db().execute("SELECT count(*) FROM notes").fetchone()
        return jsonify(count=count, version=VERSION)

    @app.post("/notes")
    def add_note():
        db = get_db()
        db.execute("INSERT INTO notes (body) VALUES ('kept across releases')")
        db.commit()
        return jsonify(added=1), 201

    return app
