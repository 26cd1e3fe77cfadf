#!/usr/bin/python
"""Check that an instance's name and paths belong to it on the host, before anything changes."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_instance
short_description: Refuse instance inputs that would take over an account, a directory or a socket
description:
  - Reads the host only (safe in check mode). Fails, naming the variable and the value as given,
    when the instance's account exists but was not created by the role for this instance, when
    its base or configuration directory is a system directory, another instance's, or an existing
    directory the role did not make, when its socket path is not free for a socket, or when its
    server block settings disagree with another instance on the same server names.
  - Each instance's claims are recorded in O(registry_dir)/<name>.json by the role; this module
    reads the other instances' records.
options:
  name: {description: The instance name (flask_gunicorn_app_name)., type: str, required: true}
  state: {description: present or absent., type: str, default: present, choices: [present, absent]}
  base_dir: {description: flask_gunicorn_base_dir as given., type: str, required: true}
  config_dir: {description: flask_gunicorn_config_dir as given., type: str, required: true}
  socket_path: {description: flask_gunicorn_socket_path as given., type: str, required: true}
  site: {description: The server block the instance is on., type: str, required: true}
  server_names: {description: The instance's server names., type: list, elements: str, default: []}
  site_settings:
    description: Server block settings every instance on the site must share.
    type: dict
    default: {}
  run_claims:
    description: Site settings claimed by instances already applied in this run, by site and name.
    type: dict
    default: {}
  allow_site_change:
    description: Let this run change settings that instances applied in earlier runs recorded.
    type: bool
    default: false
  allow_socket_move:
    description: Let this run move the socket of an instance that listens elsewhere (a restart).
    type: bool
    default: false
  registry_dir:
    description: Where the instances' records are.
    type: path
    default: /var/lib/flask_gunicorn/instances
  stash:
    description: The instance's nginx stash (flask_gunicorn_leave_site); see RV(stash_present).
    type: path
  acme_live_dir:
    description:
      - The server block's ACME lineage in certbot's C(live/) (with C(acme) certificates); see
        RV(acme_lineage_present).
    type: path
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Check the instance's claims on the host
  flask_gunicorn_instance:
    name: hello
    base_dir: /srv/hello
    config_dir: /etc/hello
    socket_path: /run/hello.sock
    site: _default
"""

RETURN = r"""
owns_account:
  description: The account exists and the role made it for this instance.
  type: bool
  returned: always
record: {description: What the role records for this instance., type: dict, returned: always}
previous_socket_path:
  description: The socket path of the instance's last run, empty without a record.
  type: str
  returned: always
record_before_nginx:
  description: >-
    What the role records before its nginx phase: the new claims, with the server block (site,
    server names, settings) of the last run kept until nginx serves the new one, so a run that
    fails or stops before then leaves a record of what nginx has.
  type: dict
  returned: always
stash_present:
  description: >-
    O(stash) exists: an earlier run left a server block there, which this run restores or drops.
  type: bool
  returned: always
acme_lineage_present:
  description: >-
    O(acme_live_dir) holds the certificate (C(fullchain.pem)) and key (C(privkey.pem)) certbot
    got for the server block, which its nginx configuration then names, whatever they certify: the
    flask_gunicorn_acme module asks for another when it will not do.
  type: bool
  returned: always
previous_site:
  description: >-
    The server block the instance's last run recorded, empty without a record: the one to leave
    when its server names changed.
  type: str
  returned: always
"""

import grp
import json
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule

# Under these, a directory is the operating system's, whatever it is called.
SYSTEM_TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    "/sbin",
    "/sys",
    "/usr",
)


# What the role puts in an instance's base and configuration directories.
BASE_MARKERS = ("releases", "shared")
CONFIG_MARKERS = ("gunicorn.conf.py", "app.env")


def q(value):
    """A value as the user wrote it, quoted (double quotes keep Ansible's YAML output readable)."""
    return json.dumps(value)


class Refused(Exception):
    """An input that would take over part of the host."""


def account_marker(name):
    """The comment (GECOS) the role gives the accounts it creates."""
    return f"flask_gunicorn instance {name}"


def check_account(name, base_dir, getpwnam=pwd.getpwnam, getgrnam=grp.getgrnam):
    """Whether the account exists as the role's own for this instance; refuse any other account.

    Accounts made by role versions before the marker are recognised by their home (the instance's
    base directory, with its releases) and their shell.
    """
    try:
        user = getpwnam(name)
    except KeyError:
        user = None
    try:
        group = getgrnam(name)
    except KeyError:
        group = None
    ours = user is not None and (
        user.pw_gecos == account_marker(name)
        or (
            user.pw_dir == base_dir
            and user.pw_shell.endswith("nologin")
            and os.path.isdir(os.path.join(base_dir, "releases"))
        )
    )
    if user is not None and not ours:
        raise Refused(
            f"flask_gunicorn_app_name: {q(name)} is an existing account on this host (home "
            f"{user.pw_dir}) that the role did not create for this instance; choose another name"
        )
    if group is not None and not (ours and user.pw_gid == group.gr_gid):
        raise Refused(
            f"flask_gunicorn_app_name: {q(name)} is an existing group on this host that the role "
            "did not create for this instance; choose another name"
        )
    return ours


def normalised_dir(variable, value):
    """value as an absolute, normal path; refuse system trees and forms that hide what they name."""
    if not isinstance(value, str) or not value.startswith("/") or os.path.normpath(value) != value:
        raise Refused(
            f"{variable}: {q(value)} must be an absolute path written plainly "
            "(no trailing /, //, . or ..)"
        )
    if value.count("/") < 2 or any(
        value == tree or value.startswith(tree + "/") for tree in SYSTEM_TREES
    ):
        raise Refused(
            f"{variable}: {q(value)} is a system directory; "
            "give the instance a directory of its own"
        )
    return value


def inside(path, other):
    """path is other or lies below it."""
    return path == other or path.startswith(other.rstrip("/") + "/")


def load_records(registry_dir, name):
    """The other instances' records: {name: record}."""
    records = {}
    if not os.path.isdir(registry_dir):
        return records
    for entry in sorted(os.listdir(registry_dir)):
        if not entry.endswith(".json") or entry[: -len(".json")] == name:
            continue
        with open(os.path.join(registry_dir, entry), encoding="utf-8") as handle:
            records[entry[: -len(".json")]] = json.load(handle)
    return records


def own_record(registry_dir, name):
    path = os.path.join(registry_dir, name + ".json")
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def previous_site(previous):
    """The server block of the instance's last run, from its record; empty without one (a first
    run, or a role version before the records)."""
    return previous.get("site") or ""


SITE_KEYS = ("site", "server_names", "site_settings")


def record_before_nginx(record, previous):
    """record, with the server block of the previous record while it is still the one nginx has."""
    if not previous.get("site"):
        return record
    return {**record, **{key: previous.get(key) for key in SITE_KEYS}}


def check_directory(variable, path, previous, markers):
    """An existing directory must be the instance's: recorded, holding what the role puts there
    (an earlier role version, or a removal that kept the data), or empty (e.g. a mount point)."""
    if previous == path or not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        raise Refused(f"{variable}: {q(path)} exists and is not a directory")
    holds_marker = any(os.path.lexists(os.path.join(path, marker)) for marker in markers)
    if holds_marker or not os.listdir(path):
        return
    raise Refused(
        f"{variable}: {q(path)} is an existing directory that the role did not make for this "
        "instance; give the instance a directory of its own"
    )


def check_paths(
    name, base_dir, config_dir, socket_path, records, previous, unit_dir="/etc/systemd/system"
):
    """Refuse directories and a socket path that are not free for this instance."""
    base_dir = normalised_dir("flask_gunicorn_base_dir", base_dir)
    config_dir = normalised_dir("flask_gunicorn_config_dir", config_dir)
    if inside(base_dir, config_dir) or inside(config_dir, base_dir):
        raise Refused(
            f"flask_gunicorn_base_dir {q(base_dir)} and flask_gunicorn_config_dir {q(config_dir)} "
            "must not lie inside each other"
        )
    for other, record in records.items():
        for variable, path in (
            ("flask_gunicorn_base_dir", base_dir),
            ("flask_gunicorn_config_dir", config_dir),
        ):
            for claimed in (record.get("base_dir"), record.get("config_dir")):
                if claimed and (inside(path, claimed) or inside(claimed, path)):
                    raise Refused(
                        f"{variable}: {q(path)} overlaps {q(claimed)} of the instance {q(other)}"
                    )
        if record.get("socket_path") == socket_path:
            raise Refused(
                f"flask_gunicorn_socket_path: {q(socket_path)} is the socket of the instance "
                f"{q(other)}"
            )
    check_directory("flask_gunicorn_base_dir", base_dir, previous.get("base_dir"), BASE_MARKERS)
    check_directory(
        "flask_gunicorn_config_dir", config_dir, previous.get("config_dir"), CONFIG_MARKERS
    )

    if not socket_path.startswith("/") or os.path.normpath(socket_path) != socket_path:
        raise Refused(
            f"flask_gunicorn_socket_path: {q(socket_path)} must be an absolute path written plainly"
        )
    if inside(socket_path, base_dir) or inside(socket_path, config_dir):
        raise Refused(
            f"flask_gunicorn_socket_path: {q(socket_path)} lies in the instance own directories; "
            "put it where only root can write, e.g. /run/<name>.sock"
        )
    parent = os.path.dirname(socket_path)
    if os.path.isdir(parent):
        info = os.stat(parent)
        if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise Refused(
                f"flask_gunicorn_socket_path: {q(socket_path)} is in {parent}, which users other "
                "than root can write; put it where only root can write, e.g. /run/<name>.sock"
            )
    if os.path.lexists(socket_path):
        info = os.lstat(socket_path)
        if not stat.S_ISSOCK(info.st_mode):
            raise Refused(
                f"flask_gunicorn_socket_path: {q(socket_path)} exists and is not a socket"
            )
        if previous.get("socket_path") != socket_path and not _socket_unit_listens(
            unit_dir, name, socket_path
        ):
            raise Refused(
                f"flask_gunicorn_socket_path: {q(socket_path)} is a socket another program "
                "listens on"
            )


def _socket_unit_listens(unit_dir, name, socket_path):
    """The instance's own socket unit (of an earlier role version) holds socket_path."""
    try:
        with open(os.path.join(unit_dir, name + ".socket"), encoding="utf-8") as handle:
            return f"ListenStream={socket_path}\n" in handle.read()
    except OSError:
        return False


def check_socket_move(socket_path, previous, allow_socket_move):
    """A socket that moves restarts: the user says so, as nothing can hold requests meanwhile."""
    recorded = previous.get("socket_path")
    if recorded and recorded != socket_path and not allow_socket_move:
        raise Refused(
            f"flask_gunicorn_socket_path: {q(socket_path)} moves the socket of the instance from "
            f"{q(recorded)}, which means restarting the socket and the service at once: requests "
            "that arrive in that moment fail. Run with flask_gunicorn_allow_socket_move=true to "
            "move it, or keep the recorded path"
        )


def _differences(mine, theirs):
    return sorted(key for key in set(mine) | set(theirs) if mine.get(key) != theirs.get(key))


def check_site(name, site, server_names, settings, records, run_claims, allow_site_change):
    """Instances on one server block share its settings; a server name belongs to one block."""
    for other, claimed in sorted(run_claims.get(site, {}).items()):
        if other != name and claimed != settings:
            keys = _differences(settings, claimed)
            raise Refused(
                f"the instances {q(name)} and {q(other)} share the server block {q(site)} but "
                f"disagree on {', '.join(keys)}: give both the same values"
            )
    for other, record in sorted(records.items()):
        if (
            record.get("site") == site
            and record.get("site_settings") != settings
            and not allow_site_change
        ):
            keys = _differences(settings, record.get("site_settings") or {})
            raise Refused(
                f"the instance {q(name)} shares the server block {q(site)} with {q(other)}, whose "
                f"last run set other values for {', '.join(keys)}; give every instance on "
                f"{q(site)} the same values, and run them together with "
                "flask_gunicorn_allow_site_change=true to change them"
            )
        if record.get("site") != site:
            shared = sorted(set(server_names) & set(record.get("server_names") or []))
            if shared:
                raise Refused(
                    f"flask_gunicorn_server_name: {', '.join(shared)} already belongs to the "
                    f"server block of the instance {q(other)}; instances that share names must "
                    "list the same first name"
                )


def lineage_present(live_dir):
    """Whether certbot's live/<name>/ holds a certificate and key (its links lead to files)."""
    return bool(live_dir) and all(
        os.path.isfile(os.path.join(live_dir, name)) for name in ("fullchain.pem", "privkey.pem")
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "absent"]},
            "base_dir": {"type": "str", "required": True},
            "config_dir": {"type": "str", "required": True},
            "socket_path": {"type": "str", "required": True},
            "site": {"type": "str", "required": True},
            "server_names": {"type": "list", "elements": "str", "default": []},
            "site_settings": {"type": "dict", "default": {}},
            "run_claims": {"type": "dict", "default": {}},
            "allow_site_change": {"type": "bool", "default": False},
            "allow_socket_move": {"type": "bool", "default": False},
            "registry_dir": {"type": "path", "default": "/var/lib/flask_gunicorn/instances"},
            "stash": {"type": "path"},
            "acme_live_dir": {"type": "path"},
        },
        supports_check_mode=True,
    )
    p = module.params
    records = load_records(p["registry_dir"], p["name"])
    previous = own_record(p["registry_dir"], p["name"])
    try:
        owns_account = check_account(p["name"], p["base_dir"])
        check_paths(p["name"], p["base_dir"], p["config_dir"], p["socket_path"], records, previous)
        if p["state"] == "present":
            check_socket_move(p["socket_path"], previous, p["allow_socket_move"])
            check_site(
                p["name"],
                p["site"],
                p["server_names"],
                p["site_settings"],
                records,
                p["run_claims"],
                p["allow_site_change"],
            )
    except Refused as error:
        module.fail_json(msg=str(error))
    record = {
        "name": p["name"],
        "base_dir": p["base_dir"],
        "config_dir": p["config_dir"],
        "socket_path": p["socket_path"],
        "site": p["site"],
        "server_names": p["server_names"],
        "site_settings": p["site_settings"],
    }
    module.exit_json(
        changed=False,
        owns_account=owns_account,
        record=record,
        record_before_nginx=record_before_nginx(record, previous),
        previous_site=previous_site(previous),
        previous_socket_path=previous.get("socket_path") or "",
        stash_present=bool(p["stash"]) and os.path.lexists(p["stash"]),
        acme_lineage_present=lineage_present(p["acme_live_dir"]),
    )


if __name__ == "__main__":
    main()
