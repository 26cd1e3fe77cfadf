"""The queue without Redis (REDIS_URL unset) and its pure functions. The worker with a real Redis
server is checked by the workers Molecule scenario."""

import pytest

from hello import __version__, create_app, queue


def test_the_queue_is_off_without_redis(client):
    answer = client.get("/queue")
    assert answer.status_code == 200
    assert answer.get_json() == {
        "queue": "off",
        "reason": "REDIS_URL is not set",
        "version": __version__,
    }
    assert client.post("/queue?seconds=1").status_code == 503
    assert client.get("/queue/some-id").status_code == 503


def test_the_worker_refuses_to_start_without_redis(app):
    result = app.test_cli_runner().invoke(args=["worker"])
    assert result.exit_code != 0
    assert "REDIS_URL is not set" in result.output


@pytest.mark.parametrize(
    ("given", "expected"),
    [("0", 0.0), ("2.5", 2.5), ("600", 600.0), ("-1", None), ("601", None), ("x", None)],
)
def test_a_jobs_length_is_a_bounded_number(given, expected):
    assert queue.parse_seconds(given) == expected


def test_prune_deletes_only_the_old_rows(tmp_path):
    path = str(tmp_path / "jobs.sqlite3")
    with queue.connect(path) as connection:
        connection.executemany(
            "INSERT INTO jobs VALUES (?, ?, ?, ?)",
            [("old", 100.0, "1.0.0", 0), ("new", 1000.0, "1.0.0", 0)],
        )
    assert queue.prune(path, older_than=500, now=1100.0) == 1
    assert queue.count(path) == 1


def test_prune_jobs_reports_the_environment(tmp_path):
    app = create_app("testing", test_config={"SITE_NAME": "Test site"})
    app.instance_path = str(tmp_path)
    result = app.test_cli_runner().invoke(args=["prune-jobs", "--older-than", "10"])
    assert result.exit_code == 0
    assert "pruned 0 rows older than 10 s" in result.output
    assert "environment testing" in result.output
