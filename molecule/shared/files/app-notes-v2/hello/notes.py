"""Notes kept in the app's database: a page with a form, a JSON API, and a login kept in Flask's
signed session cookie.

Version 2 (molecule/shared/files/app-notes-v2, copied over a copy of app/): a note keeps its
author, the user signed in when it was written. Migration 0002 adds the column, nullable: the
release still serving during a rolling deploy (version 1) writes notes without one.

Every answer names the host that served it, so a test through a load balancer can tell the
backends apart: a row written on one is listed by the other, a session made on one is valid on the
other when both share the database and the SECRET_KEY.
"""

import socket
from typing import Optional

from flask import (
    Blueprint,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from .db import db

bp = Blueprint("notes", __name__)

MAX_BODY_LENGTH = 500
MAX_NAME_LENGTH = 64
# The page and the API list the newest notes only: the table grows with every test run.
LISTED_NOTES = 50


class Note(db.Model):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(String(MAX_BODY_LENGTH))
    author: Mapped[Optional[str]] = mapped_column(String(MAX_NAME_LENGTH))

    def to_dict(self):
        return {"id": self.id, "body": self.body, "author": self.author}


def cleaned(value, max_length):
    """The text without surrounding blanks when it is 1 to max_length characters long, else None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text if 0 < len(text) <= max_length else None


def json_field(name):
    """A field of the request's JSON object; None when the body is not one."""
    payload = request.get_json(silent=True)
    return payload.get(name) if isinstance(payload, dict) else None


def newest_notes():
    return db.session.scalars(select(Note).order_by(Note.id.desc()).limit(LISTED_NOTES)).all()


def add_note(body):
    note = Note(body=body, author=session.get("user"))
    db.session.add(note)
    db.session.commit()
    return note


@bp.get("/notes")
def index():
    return render_template("notes/index.html", notes=newest_notes(), host=socket.gethostname())


@bp.post("/notes")
def create():
    body = cleaned(request.form.get("body"), MAX_BODY_LENGTH)
    if body is None:
        flash(f"A note is 1 to {MAX_BODY_LENGTH} characters.")
    else:
        add_note(body)
    # Post/Redirect/Get: reloading the page does not post the note again.
    return redirect(url_for("notes.index"), code=303)


@bp.post("/login")
def login():
    name = cleaned(request.form.get("name"), MAX_NAME_LENGTH)
    if name is None:
        flash(f"A name is 1 to {MAX_NAME_LENGTH} characters.")
    else:
        session.clear()
        session["user"] = name
    return redirect(url_for("notes.index"), code=303)


@bp.post("/logout")
def logout():
    session.clear()
    return redirect(url_for("notes.index"), code=303)


@bp.get("/api/notes")
def api_list():
    return jsonify(host=socket.gethostname(), notes=[note.to_dict() for note in newest_notes()])


@bp.post("/api/notes")
def api_create():
    body = cleaned(json_field("body"), MAX_BODY_LENGTH)
    if body is None:
        return jsonify(
            host=socket.gethostname(), error=f"body: 1 to {MAX_BODY_LENGTH} characters"
        ), 400
    return jsonify(host=socket.gethostname(), note=add_note(body).to_dict()), 201


@bp.post("/api/login")
def api_login():
    name = cleaned(json_field("name"), MAX_NAME_LENGTH)
    if name is None:
        return jsonify(
            host=socket.gethostname(), error=f"name: 1 to {MAX_NAME_LENGTH} characters"
        ), 400
    session.clear()
    session["user"] = name
    return jsonify(host=socket.gethostname(), user=name)


@bp.get("/api/whoami")
def whoami():
    return jsonify(host=socket.gethostname(), user=session.get("user"))
