"""Pages, static files and the health endpoint."""

import re
import time

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from jinja2 import TemplateNotFound

bp = Blueprint("pages", __name__)

# Page names map to templates/pages/<name>.html; anything else, dots and slashes included, is 404.
PAGE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


@bp.get("/")
def index():
    return render_template("index.html")


@bp.get("/healthz")
def healthz():
    return jsonify(
        status="ok",
        version=current_app.config["VERSION"],
        environment=current_app.config["ENVIRONMENT"],
    )


@bp.get("/api/request")
def request_info():
    """What the app sees of the request after the proxy: address, scheme, host and prefix."""
    return jsonify(
        remote_addr=request.remote_addr,
        scheme=request.scheme,
        host=request.host,
        script_root=request.script_root,
    )


@bp.get("/api/slow")
def slow():
    """Waits like a call to a database would: for the benchmark of worker classes.

    Off unless BENCH_ENDPOINTS is set (FLASK_BENCH_ENDPOINTS=true): a public endpoint that sleeps
    on request would help anyone tie up the workers.
    """
    if not current_app.config["BENCH_ENDPOINTS"]:
        abort(404)
    milliseconds = min(max(request.args.get("ms", 50, type=int), 0), 1000)
    time.sleep(milliseconds / 1000)
    return jsonify(slept_ms=milliseconds)


@bp.get("/<page>")
def page(page):
    if not PAGE_NAME.fullmatch(page):
        abort(404)
    try:
        return render_template(f"pages/{page}.html", page=page)
    except TemplateNotFound:
        abort(404)
