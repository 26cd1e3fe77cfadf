#!/usr/bin/python
"""Ask the app for its health URL through nginx and tell the app's own answer from nginx's."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_health
short_description: One health check of the app through nginx, counting only the app's own answers
description:
  - Runs the probe (curl, which prints the answer's headers on stdout) for O(url). nginx adds the
    O(header) header, with the status Gunicorn answered, to answers for this host only; an answer
    without it came from nginx itself (a dot file, a static file, a catch-all server, a rate limit),
    and never counts.
  - Healthy when the app answers O(url) with 200; or, for an app without that URL, when the app
    answers it with 404 and answers O(fallback_url) with a status from 200 to 499 other than 404.
    An app that answers 404 everywhere is not serving (a wrong WSGI app or prefix).
  - Never fails by itself (it returns C(healthy)), so that a task can retry it with C(until).
options:
  probe:
    description: The probe's command line without the URL.
    type: list
    elements: str
    required: true
  url: {description: The health URL., type: str, required: true}
  fallback_url:
    description: The URL asked when the app answers O(url) with 404.
    type: str
    required: true
  header: {description: The header nginx adds to the app's answers., type: str, required: true}
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Check the app's health through nginx
  flask_gunicorn_health:
    probe: [curl, --silent, --show-error, --output, /dev/null, --dump-header, "-"]
    url: http://localhost:80/healthz
    fallback_url: http://localhost:80/
    header: X-Flask-Gunicorn-Upstream
  register: health
  until: health.healthy
"""

RETURN = r"""
healthy: {description: Whether the app answered as healthy apps do., type: bool, returned: always}
status: {description: The HTTP status of O(url), none without one., type: int, returned: always}
from_app:
  description: Whether the app answered O(url) (not nginx itself).
  type: bool
  returned: always
fallback_status:
  description: The HTTP status of O(fallback_url), when it was asked.
  type: int
  returned: always
msg: {description: What answered, in words., type: str, returned: always}
"""

import re

from ansible.module_utils.basic import AnsibleModule

STATUS_LINE = re.compile(r"HTTP/[0-9.]+ +([0-9]{3})\b")


class Answer:
    """One answer to the probe: its status (None without one) and whether the app gave it."""

    def __init__(self, url, status=None, from_app=False, error=""):
        self.url, self.status, self.from_app, self.error = url, status, from_app, error

    def describe(self):
        if self.status is None:
            return f"{self.url}: no answer ({self.error or 'no HTTP status'})"
        if self.from_app:
            return f"{self.url}: the app answered {self.status}"
        return (
            f"{self.url}: nginx answered {self.status} itself, without the app (a dot file, a "
            "static file, another server block or a rate limit)"
        )


def parse(url, header, rc, stdout, stderr=""):
    """The answer in curl's header dump: the last response's status, and whether the app gave it.

    nginx sets the header to $upstream_status, Gunicorn's status ("502, 200" after a retry): the
    app answered when its last item is the status the client got.
    """
    status, marker = None, None
    for line in stdout.splitlines():
        line = line.strip()
        match = STATUS_LINE.match(line)
        if match:
            # A new response (after a 100 Continue, say): only the last one counts.
            status, marker = int(match.group(1)), None
            continue
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == header.lower():
            marker = value.strip()
    if status is None:
        return Answer(url, error=stderr.strip() or f"curl exit status {rc}")
    from_app = marker is not None and marker.split(",")[-1].strip() == str(status)
    return Answer(url, status, from_app)


def judge(health, fallback=None):
    """Whether the app is healthy, from its answer to the health URL and to the fallback URL."""
    if not health.from_app:
        return False
    if health.status == 200:
        return True
    if health.status != 404 or fallback is None or not fallback.from_app:
        return False
    return 200 <= fallback.status < 500 and fallback.status != 404


def main():
    module = AnsibleModule(
        argument_spec={
            "probe": {"type": "list", "elements": "str", "required": True},
            "url": {"type": "str", "required": True},
            "fallback_url": {"type": "str", "required": True},
            "header": {"type": "str", "required": True},
        },
        supports_check_mode=True,
    )
    p = module.params

    def ask(url):
        rc, stdout, stderr = module.run_command(p["probe"] + [url])
        return parse(url, p["header"], rc, stdout, stderr)

    health = ask(p["url"])
    fallback = ask(p["fallback_url"]) if health.from_app and health.status == 404 else None
    healthy = judge(health, fallback)
    words = [health.describe()] + ([fallback.describe()] if fallback else [])
    if not healthy and fallback is not None and fallback.from_app and fallback.status == 404:
        words.append("an app that answers 404 everywhere is not serving")
    module.exit_json(
        changed=False,
        healthy=healthy,
        status=health.status,
        from_app=health.from_app,
        fallback_status=fallback.status if fallback else None,
        msg="; ".join(words),
    )


if __name__ == "__main__":
    main()
