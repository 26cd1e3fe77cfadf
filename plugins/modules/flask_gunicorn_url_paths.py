#!/usr/bin/python
"""Refuse URL paths that nginx would not route to the app, before anything changes."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_url_paths
short_description: Refuse a URL prefix, static or health path nginx would not route to the app
description:
  - Reads nothing and changes nothing (safe in check mode). Fails, naming the variable and the value
    as given, when a path would never reach the app through the role's nginx configuration.
  - The server block answers 404 itself for every path with a segment starting with C(.) (dot
    files, C(/.git/)), except C(/.well-known/), which is kept for the site (ACME). A URL prefix or a
    static path with such a segment is refused, C(/.well-known) as well.
  - A static path of C(/) (or empty) while nginx serves the static files would take every URL of
    the app; a health path below the static path would be answered from disk.
  - The health path must be a URL path (an optional query string) that curl sends as written
    and that nginx routes under the prefix (no C(.) or C(..) segment, even percent-encoded).
options:
  url_prefix: {description: flask_gunicorn_url_prefix as given., type: str, default: ""}
  static_url_path: {description: flask_gunicorn_static_url_path as given., type: str, default: ""}
  static_dir:
    description: flask_gunicorn_static_dir; empty when the app serves its static files itself.
    type: str
    default: ""
  health_path: {description: flask_gunicorn_health_path as given., type: str, required: true}
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Check the URL paths nginx routes to the app
  flask_gunicorn_url_paths:
    url_prefix: /shop
    static_url_path: /static
    static_dir: shop/static
    health_path: /healthz
"""

RETURN = r"""
static_location:
  description:
    - The static files' location below the prefix (C(/static/)); empty when the app serves them.
  type: str
  returned: always
"""

import json
import re
from urllib.parse import unquote

from ansible.module_utils.basic import AnsibleModule

# The characters the role writes into nginx's location lines: RFC 3986's unreserved ones.
SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
# A health URL's path and query: RFC 3986's pchar, "/" and "?", with well-formed percent-escapes.
HEALTH = re.compile(
    r"/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*"
    r"(?:\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?"
)


# The server block's dot-file rule, `location ~ /\.(?!well-known/)`: nginx answers these itself.
DOT_FILES = re.compile(r"/\.(?!well-known/)")


def q(value):
    """A value as the user wrote it, quoted (double quotes keep Ansible's YAML output readable)."""
    return json.dumps(value)


class Refused(Exception):
    """A path the role's nginx would not route to the app."""


def dot_segment(path):
    """The first segment of path that starts with '.' (nginx answers it itself), or None."""
    return next((segment for segment in path.split("/") if segment.startswith(".")), None)


def check_prefix(variable, value, allow_trailing_slash=False):
    """value is a path of plain segments (empty is the site's root); refuse dot segments."""
    path = value[:-1] if allow_trailing_slash and value.endswith("/") else value
    segments = path.split("/")[1:]
    if path and (not path.startswith("/") or not all(SEGMENT.fullmatch(s) for s in segments)):
        raise Refused(
            f"{variable}: {q(value)} must be a path like /shop or /apps/shop: segments of letters, "
            "digits, '.', '_', '~' and '-', separated by single '/'"
        )
    segment = dot_segment(path)
    if segment is not None:
        raise Refused(
            f"{variable}: {q(value)} has the path segment {q(segment)}, which starts with '.': "
            "nginx answers every such path with 404 itself (dot files such as /.git and /.env are "
            "never served, /.well-known/ is kept for the site), so the app would never be reached"
        )
    return path


def check_static(static_url_path, static_dir):
    """The static files' location below the prefix, or '' when the app serves them itself."""
    if not static_dir:
        return ""
    path = check_prefix("flask_gunicorn_static_url_path", static_url_path, True)
    if not path:
        raise Refused(
            f"flask_gunicorn_static_url_path: {q(static_url_path)} would make nginx serve every "
            f"URL of the app from flask_gunicorn_static_dir {q(static_dir)}, so no request would "
            'reach the app; give a path such as /static, or set flask_gunicorn_static_dir to "" '
            "to leave static files to the app"
        )
    return path + "/"


def check_health(health_path, static_location):
    """The health URL is a path that curl sends as written and nginx routes to the app."""
    if not isinstance(health_path, str) or not HEALTH.fullmatch(health_path):
        raise Refused(
            f"flask_gunicorn_health_path: {q(health_path)} must be a URL path starting with '/', "
            "optionally with a query string: no white space, '#', or characters a URL must "
            "percent-encode, and percent-escapes written as %XX"
        )
    # nginx decodes percent-escapes before it matches locations and resolves dot segments.
    path = unquote(health_path.split("?", 1)[0])
    segments = path.split("/")
    if "." in segments or ".." in segments:
        raise Refused(
            f"flask_gunicorn_health_path: {q(health_path)} has a '.' or '..' segment: curl and "
            "nginx resolve it, so the check would ask another URL than the one given"
        )
    if DOT_FILES.search(path):
        raise Refused(
            f"flask_gunicorn_health_path: {q(health_path)} has a path segment that starts with "
            "'.': nginx answers every such path (but /.well-known/) with 404 itself, so the "
            "check would never reach the app"
        )
    if static_location and path.startswith(static_location):
        raise Refused(
            f"flask_gunicorn_health_path: {q(health_path)} lies below the static files' "
            f"location {q(static_location)} (flask_gunicorn_static_url_path), which nginx serves "
            "from disk, so the check would never reach the app"
        )


def check(url_prefix, static_url_path, static_dir, health_path):
    """Every check in turn; returns the static files' location below the prefix."""
    check_prefix("flask_gunicorn_url_prefix", url_prefix)
    static_location = check_static(static_url_path, static_dir)
    check_health(health_path, static_location)
    return static_location


def main():
    module = AnsibleModule(
        argument_spec={
            "url_prefix": {"type": "str", "default": ""},
            "static_url_path": {"type": "str", "default": ""},
            "static_dir": {"type": "str", "default": ""},
            "health_path": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        static_location = check(
            p["url_prefix"], p["static_url_path"], p["static_dir"], p["health_path"]
        )
    except Refused as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, static_location=static_location)


if __name__ == "__main__":
    main()
