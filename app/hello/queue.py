"""A queue of jobs done by a background worker (RQ on Redis), and a scheduled job that prunes them.

Shows the role's flask_gunicorn_processes and flask_gunicorn_timers: `flask worker` is the
long-running process, `flask prune-jobs` the scheduled job. Without REDIS_URL the queue is off and
the rest of the app works as before; rq and redis are imported only when it is on.
"""

import os
import sqlite3
import time
import uuid

import click
from flask import Blueprint, abort, current_app, jsonify, request

from . import __version__

# cli_group=None: `flask worker` and `flask prune-jobs` at the top level.
bp = Blueprint("queue", __name__, cli_group=None)

DATABASE_NAME = "jobs.sqlite3"
QUEUE_NAME = "hello"
MAX_SECONDS = 600


def database_path(app):
    return os.path.join(app.instance_path, DATABASE_NAME)


def connect(path):
    connection = sqlite3.connect(path, timeout=30)
    connection.execute(
        "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, done REAL NOT NULL,"
        " version TEXT NOT NULL, seconds REAL NOT NULL)"
    )
    return connection


def process(path, seconds):
    """The job the worker does: wait `seconds` (work), then store the row with this code's version.

    The version is the one the worker loaded, so a deploy shows when the worker runs new code."""
    from rq import get_current_job

    time.sleep(seconds)
    job = get_current_job()
    job_id = job.id if job else uuid.uuid4().hex
    with connect(path) as connection:
        connection.execute(
            "INSERT OR REPLACE INTO jobs VALUES (?, ?, ?, ?)",
            (job_id, time.time(), __version__, seconds),
        )
    return {"version": __version__, "seconds": seconds, "pid": os.getpid()}


def prune(path, older_than, now=None):
    """Delete the rows done more than `older_than` seconds ago; how many went."""
    now = time.time() if now is None else now
    with connect(path) as connection:
        return connection.execute("DELETE FROM jobs WHERE done < ?", (now - older_than,)).rowcount


def count(path):
    with connect(path) as connection:
        return connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


def parse_seconds(value):
    """A job's length from the request: a number from 0 to MAX_SECONDS, else None."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if 0 <= seconds <= MAX_SECONDS else None


def redis_connection():
    from redis import Redis

    return Redis.from_url(current_app.config["REDIS_URL"])


def get_queue():
    from rq import Queue

    return Queue(QUEUE_NAME, connection=redis_connection())


@bp.get("/queue")
def status():
    if not current_app.config["REDIS_URL"]:
        return jsonify(queue="off", reason="REDIS_URL is not set", version=__version__)
    queue = get_queue()
    return jsonify(queue="on", waiting=len(queue), version=__version__)


@bp.post("/queue")
def enqueue():
    if not current_app.config["REDIS_URL"]:
        return jsonify(queue="off", reason="REDIS_URL is not set"), 503
    seconds = parse_seconds(request.args.get("seconds", "0"))
    if seconds is None:
        abort(400)
    job = get_queue().enqueue(
        process, database_path(current_app), seconds, job_timeout=MAX_SECONDS + 60
    )
    return jsonify(id=job.id, queue="on"), 202


@bp.get("/queue/<job_id>")
def job_status(job_id):
    if not current_app.config["REDIS_URL"]:
        return jsonify(queue="off", reason="REDIS_URL is not set"), 503
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=redis_connection())
    except NoSuchJobError:
        abort(404)
    return jsonify(id=job.id, status=job.get_status(refresh=True), result=job.return_value())


@bp.cli.command("worker", with_appcontext=True)
def worker():
    """Run the RQ worker of the app's queue (until SIGTERM: it finishes the job in hand first)."""
    if not current_app.config["REDIS_URL"]:
        raise click.ClickException("REDIS_URL is not set: the queue is off")
    from rq import Worker

    os.makedirs(current_app.instance_path, exist_ok=True)
    Worker([get_queue()], connection=redis_connection()).work()


@bp.cli.command("prune-jobs", with_appcontext=True)
@click.option("--older-than", default=3600, show_default=True, help="Seconds a row is kept.")
def prune_jobs(older_than):
    """Delete the done jobs' rows older than --older-than seconds."""
    pruned = prune(database_path(current_app), older_than)
    click.echo(
        f"pruned {pruned} rows older than {older_than} s"
        f" (version {__version__}, environment {current_app.config['ENVIRONMENT']})"
    )
