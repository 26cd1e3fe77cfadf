#!/usr/bin/python
"""ACME certificates through certbot's webroot: issuing only when needed, and days left."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_acme
short_description: Get a certificate with certbot when the one there will not do, report days left
description:
  - The nginx location that serves the challenges at C(/.well-known/acme-challenge/) comes from
    the module flask_gunicorn_inputs (RV(acme_challenge_location) there), for both roles; the
    flask_gunicorn role makes the webroot.
  - O(state=read) reads the lineage O(cert_name) in O(config_dir) (C(live/<name>/cert.pem) and
    C(renewal/<name>.conf)) and says whether it is O(ready), meaning it exists, names exactly
    O(domains), came from O(directory_url), has the key type O(key_type) (when its renewal file
    records one) and has not expired. It reads only, and contacts no ACME server.
  - O(state=present) does the same, and when the lineage is not ready runs C(certbot certonly
    --webroot) for O(domains), non-interactively (with C(--force-renewal), as certbot runs only when
    the lineage must change), with O(ca_bundle) as C(REQUESTS_CA_BUNDLE). O(before_certbot) runs
    first, only then (the role reloads nginx with it, so that nginx serves the challenge for the
    names of a server block it has just written). A ready lineage changes nothing and contacts no
    ACME server. In check mode neither command runs.
  - O(state=report) lists every lineage in O(config_dir) with its names, expiry and days left,
    and fails when one has fewer than O(min_days_left) left.
options:
  state:
    description: What to do.
    type: str
    default: present
    choices: [read, present, report]
  webroot:
    description: The webroot certbot writes the challenges in and nginx serves.
    type: path
    default: /var/lib/flask_gunicorn/acme-webroot
  cert_name:
    description: The lineage's name (certbot's C(--cert-name)); the roles use the server block's.
    type: str
  domains:
    description: The certificate's names (subject alternative names), the first as its subject.
    type: list
    elements: str
    default: []
  email:
    description: The ACME account's contact; empty registers without one.
    type: str
    default: ""
  directory_url:
    description: The ACME server's directory URL (certbot's C(--server)).
    type: str
  key_type:
    description: The certificate's key, ECDSA P-256 or RSA 2048 (certbot's C(--key-type)).
    type: str
    default: ecdsa
    choices: [ecdsa, rsa]
  ca_bundle:
    description:
      - CA certificates on the host that certbot trusts for the ACME server's HTTPS, for a
        private CA (C(REQUESTS_CA_BUNDLE)); empty for the system's.
    type: path
  config_dir:
    description: certbot's configuration directory.
    type: path
    default: /etc/letsencrypt
  min_days_left:
    description: With O(state=report), fail when a certificate has fewer days left.
    type: int
    default: 0
  certbot:
    description: The certbot command, as an argument list.
    type: list
    elements: str
    default: [certbot]
  before_certbot:
    description:
      - A command, as an argument list, run right before certbot and only when certbot runs; when
        it fails, certbot does not run and the task fails. Empty for none.
    type: list
    elements: str
    default: []
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Get the certificate of example.com, unless the one there names the same names
  flask_gunicorn_acme:
    cert_name: example.com
    domains: [example.com, www.example.com]
    email: admin@example.com
    directory_url: https://acme-staging-v02.api.letsencrypt.org/directory
    # Only when certbot runs: nginx must serve the challenge for these names first.
    before_certbot: [systemctl, reload-or-restart, nginx]

- name: Report the days left on every certificate, failing below 14
  flask_gunicorn_acme:
    state: report
    min_days_left: 14
"""

RETURN = r"""
ready:
  description: Whether the lineage exists, names exactly the domains, came from the directory URL
    and has not expired (after certbot ran, with O(state=present)).
  type: bool
  returned: with state read and present
reason:
  description: Why the lineage was not ready before this task; empty when it was.
  type: str
  returned: with state read and present
certificate:
  description: The lineage's certificate with its chain (C(live/<name>/fullchain.pem)).
  type: str
  returned: with state read and present
key:
  description: The lineage's private key (C(live/<name>/privkey.pem)).
  type: str
  returned: with state read and present
names:
  description: The names the lineage's certificate holds (empty without one).
  type: list
  elements: str
  returned: with state read and present
not_after:
  description: When the lineage's certificate expires (ISO 8601, UTC; empty without one).
  type: str
  returned: with state read and present
days_left:
  description: Whole days until the certificate expires (negative once expired; null without one).
  type: int
  returned: with state read and present
certificates:
  description: Every lineage, each with name, names, not_after, days_left, server and error.
  type: list
  elements: dict
  returned: with state report
"""

import datetime
import json
import os
import subprocess

from ansible.module_utils.basic import AnsibleModule


class Refused(Exception):
    """The task cannot be done as asked; nothing changed."""


def parse_names(text):
    """The DNS names of openssl's subjectAltName extension text, lowercased, in order."""
    names = []
    for line in text.splitlines():
        for item in line.split(","):
            item = item.strip()
            if item.startswith("DNS:"):
                names.append(item[4:].lower())
    return names


def parse_not_after(text):
    """openssl's notAfter=Mon DD HH:MM:SS YYYY GMT as an aware datetime, or None."""
    for line in text.splitlines():
        if line.startswith("notAfter="):
            value = " ".join(line.split("=", 1)[1].split())
            return datetime.datetime.strptime(value, "%b %d %H:%M:%S %Y %Z").replace(
                tzinfo=datetime.timezone.utc
            )
    return None


def read_certificate(path, run=subprocess.run):
    """(names, not_after) of the certificate at path, read by openssl; None when it is missing."""
    if not os.path.exists(path):
        return None
    completed = run(
        ["openssl", "x509", "-noout", "-enddate", "-ext", "subjectAltName", "-in", path],
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise Refused(f"openssl cannot read {json.dumps(path)}: {completed.stderr.strip()}")
    return parse_names(completed.stdout), parse_not_after(completed.stdout)


def renewal_setting(config_dir, cert_name, setting):
    """A setting of a lineage's renewal file (server: the directory URL it renews from), or ''."""
    path = os.path.join(config_dir, "renewal", f"{cert_name}.conf")
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.partition("=")
                if key.strip() == setting:
                    return value.strip()
    except FileNotFoundError:
        pass
    return ""


def days_left(not_after, now=None):
    if not_after is None:
        return None
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return (not_after - now).days


def lineage(
    config_dir, cert_name, domains, directory_url, key_type="", now=None, run=subprocess.run
):
    """What the lineage holds and whether it is ready for these domains and this ACME server.

    key_type counts only when the renewal file records one (certbot before 2.0 may not).
    """
    live = os.path.join(config_dir, "live", cert_name)
    found = read_certificate(os.path.join(live, "cert.pem"), run)
    names, not_after = found if found else ([], None)
    left = days_left(not_after, now)
    wanted = sorted({name.lower() for name in domains})
    server = renewal_setting(config_dir, cert_name, "server")
    recorded_key_type = renewal_setting(config_dir, cert_name, "key_type")
    if found is None:
        reason = f"no certificate {json.dumps(cert_name)} yet"
    elif sorted(set(names)) != wanted:
        reason = f"the certificate names {json.dumps(names)}, not {json.dumps(wanted)}"
    elif server.rstrip("/") != directory_url.rstrip("/"):
        reason = f"the certificate came from {json.dumps(server)}, not {json.dumps(directory_url)}"
    elif key_type and recorded_key_type and recorded_key_type != key_type:
        reason = f"the certificate's key is {recorded_key_type}, not {key_type}"
    elif left is None or not_after <= (now or datetime.datetime.now(datetime.timezone.utc)):
        reason = "the certificate has expired"
    else:
        reason = ""
    return {
        "ready": not reason,
        "reason": reason,
        "certificate": os.path.join(live, "fullchain.pem"),
        "key": os.path.join(live, "privkey.pem"),
        "names": names,
        "not_after": not_after.isoformat() if not_after else "",
        "days_left": left,
    }


def certbot_argv(
    certbot, cert_name, domains, email, directory_url, webroot, config_dir, key_type="ecdsa"
):
    """certbot's command line for one certificate of all domains through the webroot."""
    argv = [
        *certbot,
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--config-dir",
        config_dir,
        "--webroot",
        "--webroot-path",
        webroot,
        "--cert-name",
        cert_name,
        "--server",
        directory_url,
        # Only called when the lineage must change (missing, other names, other ACME server):
        # without it, certbot would keep a lineage that is not due for renewal.
        "--force-renewal",
        "--key-type",
        key_type,
    ]
    if key_type == "rsa":
        # Mozilla's intermediate profile: RSA keys of 2048 bits.
        argv += ["--rsa-key-size", "2048"]
    argv += ["--email", email] if email else ["--register-unsafely-without-email"]
    for name in domains:
        argv += ["--domain", name]
    return argv


def report(config_dir, now=None, run=subprocess.run):
    """Every lineage in config_dir: name, names, not_after, days_left, server, error."""
    live = os.path.join(config_dir, "live")
    entries = []
    names = sorted(os.listdir(live)) if os.path.isdir(live) else []
    for name in names:
        if not os.path.isdir(os.path.join(live, name)):
            continue
        entry = {"name": name, "names": [], "not_after": "", "days_left": None, "error": ""}
        entry["server"] = renewal_setting(config_dir, name, "server")
        try:
            found = read_certificate(os.path.join(live, name, "cert.pem"), run)
        except Refused as error:
            found, entry["error"] = None, str(error)
        if found:
            entry["names"], not_after = found
            entry["not_after"] = not_after.isoformat() if not_after else ""
            entry["days_left"] = days_left(not_after, now)
        elif not entry["error"]:
            entry["error"] = "no cert.pem"
        entries.append(entry)
    return entries


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "default": "present",
                "choices": ["read", "present", "report"],
            },
            "webroot": {"type": "path", "default": "/var/lib/flask_gunicorn/acme-webroot"},
            "cert_name": {"type": "str"},
            "domains": {"type": "list", "elements": "str", "default": []},
            "email": {"type": "str", "default": ""},
            "directory_url": {"type": "str"},
            "key_type": {"type": "str", "default": "ecdsa", "choices": ["ecdsa", "rsa"]},
            "ca_bundle": {"type": "path"},
            "config_dir": {"type": "path", "default": "/etc/letsencrypt"},
            "min_days_left": {"type": "int", "default": 0},
            "certbot": {"type": "list", "elements": "str", "default": ["certbot"]},
            "before_certbot": {"type": "list", "elements": "str", "default": []},
        },
        required_if=[
            ("state", "read", ["cert_name", "domains", "directory_url"]),
            ("state", "present", ["cert_name", "domains", "directory_url"]),
        ],
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p["state"] == "report":
            certificates = report(p["config_dir"])
            short = [
                entry
                for entry in certificates
                if entry["error"] or (entry["days_left"] or 0) < p["min_days_left"]
            ]
            if short and p["min_days_left"] > 0:
                module.fail_json(
                    msg=f"Certificates with fewer than {p['min_days_left']} days left, or"
                    " unreadable: "
                    + ", ".join(
                        f"{entry['name']} ({entry['error'] or str(entry['days_left']) + ' days'})"
                        for entry in short
                    ),
                    certificates=certificates,
                )
            module.exit_json(changed=False, certificates=certificates)
        before = lineage(
            p["config_dir"], p["cert_name"], p["domains"], p["directory_url"], p["key_type"]
        )
        if p["state"] == "read" or before["ready"]:
            module.exit_json(changed=False, **before)
        if module.check_mode:
            module.exit_json(changed=True, **before)
        argv = certbot_argv(
            p["certbot"],
            p["cert_name"],
            p["domains"],
            p["email"],
            p["directory_url"],
            p["webroot"],
            p["config_dir"],
            p["key_type"],
        )
        if p["before_certbot"]:
            completed = subprocess.run(
                p["before_certbot"], capture_output=True, text=True, check=False
            )
            if completed.returncode != 0:
                said = (completed.stderr.strip() or completed.stdout.strip())[-3000:]
                module.fail_json(
                    msg=f"{json.dumps(p['before_certbot'])}, run before certbot, failed; certbot"
                    f" did not run. It said: {said}",
                    rc=completed.returncode,
                )
        environment = dict(os.environ)
        if p["ca_bundle"]:
            environment["REQUESTS_CA_BUNDLE"] = p["ca_bundle"]
        completed = subprocess.run(
            argv, capture_output=True, text=True, check=False, env=environment
        )
        if completed.returncode != 0:
            said = (completed.stderr.strip() or completed.stdout.strip())[-3000:]
            module.fail_json(
                msg=f"certbot could not get the certificate {json.dumps(p['cert_name'])} for "
                f"{json.dumps(p['domains'])} from {p['directory_url']} ({before['reason']}); "
                f"certbot said: {said}",
                rc=completed.returncode,
            )
        after = lineage(
            p["config_dir"], p["cert_name"], p["domains"], p["directory_url"], p["key_type"]
        )
        if not after["ready"]:
            module.fail_json(
                msg=f"certbot ran, but the certificate {json.dumps(p['cert_name'])} is still not "
                f"right: {after['reason']}",
            )
        module.exit_json(changed=True, **{**after, "reason": before["reason"]})
    except Refused as error:
        module.fail_json(msg=str(error))
    except OSError as error:
        module.fail_json(msg=f"{json.dumps(error.filename)} could not run: {error.strerror}.")


if __name__ == "__main__":
    main()
