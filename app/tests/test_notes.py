"""The notes page and API and the login session, on SQLite and on PostgreSQL (conftest.py)."""

import socket

import pytest

HOST = socket.gethostname()


def test_the_page_lists_what_its_form_adds(db_client):
    assert b"No notes yet." in db_client.get("/notes").data
    response = db_client.post("/notes", data={"body": "  <b>first</b>  "})
    assert response.status_code == 303
    assert response.headers["Location"] == "/notes"
    page = db_client.get("/notes").data
    # Escaped, without the blanks around it.
    assert b"<li>&lt;b&gt;first&lt;/b&gt;</li>" in page
    assert f"Served by {HOST}.".encode() in page


@pytest.mark.parametrize("body", ["", "   ", "x" * 501])
def test_the_page_refuses_an_empty_or_long_note(db_client, body):
    response = db_client.post("/notes", data={"body": body}, follow_redirects=True)
    assert b"A note is 1 to 500 characters." in response.data
    assert b"No notes yet." in response.data


def test_the_api_adds_and_lists_notes_newest_first_with_the_host(db_client):
    for body in ("one", "two"):
        response = db_client.post("/api/notes", json={"body": body})
        assert response.status_code == 201
        assert response.get_json()["host"] == HOST
        assert response.get_json()["note"]["body"] == body
    answer = db_client.get("/api/notes").get_json()
    assert answer["host"] == HOST
    assert [note["body"] for note in answer["notes"]] == ["two", "one"]


@pytest.mark.parametrize(
    "payload", [{}, {"body": ""}, {"body": "x" * 501}, {"body": 3}, ["body"], None]
)
def test_the_api_refuses_a_bad_note(db_client, payload):
    response = db_client.post("/api/notes", json=payload)
    assert response.status_code == 400
    assert response.get_json()["error"] == "body: 1 to 500 characters"
    assert db_client.get("/api/notes").get_json()["notes"] == []


def test_a_note_written_through_one_app_is_listed_by_another(db_app, database_url, make_app):
    # Two backends behind a load balancer: two processes on one database.
    db_app.test_client().post("/api/notes", json={"body": "shared"})
    other = make_app(database_url)
    assert [n["body"] for n in other.test_client().get("/api/notes").get_json()["notes"]] == [
        "shared"
    ]


def test_the_api_login_is_kept_in_the_session(client):
    assert client.get("/api/whoami").get_json() == {"host": HOST, "user": None}
    response = client.post("/api/login", json={"name": " ann "})
    assert response.get_json() == {"host": HOST, "user": "ann"}
    assert client.get("/api/whoami").get_json() == {"host": HOST, "user": "ann"}


@pytest.mark.parametrize("payload", [{}, {"name": " "}, {"name": "x" * 65}, {"name": ["ann"]}])
def test_the_api_login_refuses_a_bad_name(client, payload):
    assert client.post("/api/login", json=payload).status_code == 400
    assert client.get("/api/whoami").get_json()["user"] is None


def test_the_form_logs_in_and_out(db_client):
    response = db_client.post("/login", data={"name": "bob"}, follow_redirects=True)
    assert b"Signed in as <strong>bob</strong>" in response.data
    response = db_client.post("/logout", follow_redirects=True)
    assert b"Signed in" not in response.data
    assert db_client.get("/api/whoami").get_json()["user"] is None


def test_a_session_made_on_one_backend_is_valid_on_another_with_the_same_key(tmp_path, make_app):
    url = f"sqlite:///{tmp_path}/hello.sqlite"
    first = make_app(url, SECRET_KEY="the-shared-secret-of-the-app").test_client()
    first.post("/api/login", json={"name": "ann"})
    cookie = first.get_cookie("session")
    assert cookie is not None

    second = make_app(url, SECRET_KEY="the-shared-secret-of-the-app").test_client()
    second.set_cookie("session", cookie.value)
    assert second.get("/api/whoami").get_json()["user"] == "ann"

    # A backend with another key ignores the cookie: the signature is what makes it valid.
    stranger = make_app(url, SECRET_KEY="another-secret-entirely").test_client()
    stranger.set_cookie("session", cookie.value)
    assert stranger.get("/api/whoami").get_json()["user"] is None


def test_the_session_cookie_is_not_sent_by_cross_site_posts(client):
    client.post("/api/login", json={"name": "ann"})
    assert "SameSite=Lax" in client.post("/api/login", json={"name": "ann"}).headers["Set-Cookie"]
