"""Sample Flask application, built by an application factory."""

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import CONFIGS, ConfigError

__version__ = "1.0.0"

ENVIRONMENT_VARIABLE = "APP_ENV"
DEFAULT_ENVIRONMENT = "production"


def create_app(config_name=None, test_config=None):
    """Create the application for the environment named by config_name.

    config_name falls back to the APP_ENV environment variable, then to production. test_config,
    a mapping, replaces the instance config file and the environment overrides (used by the tests).
    """
    config_name = config_name or os.environ.get(ENVIRONMENT_VARIABLE) or DEFAULT_ENVIRONMENT
    if config_name not in CONFIGS:
        raise ConfigError(
            f"unknown environment {config_name!r}: {ENVIRONMENT_VARIABLE} accepts "
            + ", ".join(sorted(CONFIGS))
        )

    app = Flask(
        __name__,
        instance_path=os.environ.get("APP_INSTANCE_PATH") or None,
        instance_relative_config=True,
    )
    app.config.from_object(CONFIGS[config_name])
    app.config["ENVIRONMENT"] = config_name
    app.config["VERSION"] = __version__

    if test_config is None:
        # Per-host settings a deploy keeps out of the code, then the process environment.
        app.config.from_pyfile("config.py", silent=True)
        if "SECRET_KEY" in os.environ:
            app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]
        app.config.from_prefixed_env()
        # The queue (hello.queue) is on only with a Redis server to use.
        app.config.setdefault("REDIS_URL", os.environ.get("REDIS_URL", ""))
        # Empty: the SQLite file in the instance folder (hello.sqlite).
        app.config.setdefault("DATABASE_URL", os.environ.get("DATABASE_URL", ""))
    else:
        app.config.from_mapping(test_config)

    CONFIGS[config_name].check(app.config)

    # Gunicorn listens on a unix socket that only the local nginx can reach, so exactly that many
    # proxy hops are trusted for the client address, scheme, host and URL prefix.
    hops = app.config["TRUSTED_PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops)

    app.config.setdefault("REDIS_URL", "")
    app.config.setdefault("DATABASE_URL", "")

    from . import db, notes, pages, queue

    db.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(queue.bp)
    app.register_blueprint(notes.bp)
    return app
