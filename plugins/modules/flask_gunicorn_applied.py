#!/usr/bin/python
"""Keep the configuration and release that last proved healthy, to compare with and go back to."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_applied
short_description: Record, compare and restore what last served healthy
description:
  - The flask_gunicorn role goes live (restart and health check) whenever the files the service
    runs with, or the release, differ from what last passed a health check, not only when a file
    changed in this run, so that a failed or interrupted run leaves nothing owed behind.
  - O(state=compare) reads only. O(state=record) copies the files and names the release in
    O(applied_dir), atomically. O(state=restore) puts the recorded files back (each by rename) and
    points O(current_link) at the recorded release.
options:
  state:
    description: compare, record or restore.
    type: str
    choices: [compare, record, restore]
    default: compare
  applied_dir:
    description: Directory holding the record, for root only.
    type: path
    required: true
  files:
    description: Absolute paths of the files the service runs with.
    type: list
    elements: path
    default: []
  release:
    description: The release directory that serves (record) or should serve (compare).
    type: path
  current_link:
    description:
      - The current symlink, pointed at the recorded release on restore.
      - With O(state=compare), a link that names another release than O(release) is pending.
    type: path
  service:
    description:
      - With O(state=compare), the service unit; when it does not run, or started before current
        was last switched, it is pending.
    type: str
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Compare with what last proved healthy
  flask_gunicorn_applied:
    applied_dir: /var/lib/flask_gunicorn/applied/hello
    files: [/etc/systemd/system/hello.service, /etc/hello/gunicorn.conf.py]
    release: /srv/hello/releases/0123456789ab
"""

RETURN = r"""
recorded:
  description: Whether a healthy state was ever recorded.
  type: bool
  returned: always
release:
  description: The recorded release directory, or an empty string.
  type: str
  returned: always
differs:
  description: The files whose content differs from the record (compare).
  type: list
  elements: str
  returned: always
pending:
  description: The release or a file differs from the record, or nothing was recorded (compare).
  type: bool
  returned: always
stale:
  description: Recorded files that are no longer among O(files); a record drops them.
  type: list
  elements: str
  returned: always
"""

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

INDEX = "index.json"


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def load(applied_dir):
    """The record: {"release": str, "files": {path: {"copy": name, "mode", "uid", "gid"}}}, or None.

    A record interrupted while it replaced the previous one is found under its .old name.
    """
    for candidate in (applied_dir, applied_dir + ".old"):
        index = _read(os.path.join(candidate, INDEX))
        if index is not None:
            record = json.loads(index)
            record["dir"] = candidate
            return record
    return None


def compare(applied_dir, files, release, current_link=None, service_started=None):
    """What differs from the record.

    With current_link, a link that names another release is pending. With service_started (when
    the running service started, seconds since the epoch; 0 when it does not run), a service that
    does not run, or that started before current was last switched, is pending: an interrupted run
    may have left either behind.
    """
    record = load(applied_dir)
    if record is None:
        return {
            "recorded": False,
            "release": "",
            "differs": list(files),
            "pending": True,
            "stale": [],
        }
    differs = []
    for path in files:
        entry = record["files"].get(path)
        live = _read(path)
        kept = None if entry is None else _read(os.path.join(record["dir"], entry["copy"]))
        if live != kept:
            differs.append(path)
    pending = bool(differs) or record["release"] != release
    if current_link is not None:
        pending = (
            pending or not os.path.islink(current_link) or os.readlink(current_link) != release
        )
    if service_started is not None:
        switched = (
            os.lstat(current_link).st_mtime if current_link and os.path.islink(current_link) else 0
        )
        # The start time is known to the second (boot time) plus 1/100 s: a service started within
        # a second after the switch is not taken for one started before it.
        pending = pending or not service_started or switched > service_started + 1
    # Recorded files no longer among files (the unit of a process no longer given): the service
    # does not run with them, so nothing is pending, but the record must drop them, or a failed
    # go-live would put them back.
    stale = sorted(set(record["files"]) - set(files))
    return {
        "recorded": True,
        "release": record["release"],
        "differs": differs,
        "pending": pending,
        "stale": stale,
    }


def record(applied_dir, files, release):
    """Replace the record with copies of files and the release; True when it changed."""
    compared = compare(applied_dir, files, release)
    if not compared["pending"] and not compared["stale"]:
        return False
    parent = os.path.dirname(applied_dir)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=os.path.basename(applied_dir) + ".new-", dir=parent)
    entries = {}
    for number, path in enumerate(files):
        if not os.path.exists(path):
            continue
        info = os.stat(path)
        copy = f"{number}.copy"
        shutil.copyfile(path, os.path.join(staging, copy))
        # The copies hold secrets (the environment files): root's alone, like their directory.
        os.chmod(os.path.join(staging, copy), 0o600)
        entries[path] = {
            "copy": copy,
            "mode": info.st_mode & 0o7777,
            "uid": info.st_uid,
            "gid": info.st_gid,
        }
    with open(
        os.open(os.path.join(staging, INDEX), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600),
        "w",
        encoding="utf-8",
    ) as handle:
        json.dump({"release": release, "files": entries}, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(staging, 0o700)
    old = applied_dir + ".old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(applied_dir):
        os.rename(applied_dir, old)
    os.rename(staging, applied_dir)
    shutil.rmtree(old, ignore_errors=True)
    return True


def _replace_file(path, content, mode, uid, gid):
    handle, temporary = tempfile.mkstemp(prefix=".flask_gunicorn-", dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chown(temporary, uid, gid)
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _point(link, target):
    temporary = f"{link}.flask_gunicorn-{os.getpid()}"
    os.symlink(target, temporary)
    os.rename(temporary, link)


def restore(applied_dir, current_link):
    """Put the recorded files and release back; the paths that changed."""
    record = load(applied_dir)
    if record is None:
        return []
    restored = []
    for path, entry in sorted(record["files"].items()):
        kept = _read(os.path.join(record["dir"], entry["copy"]))
        if _read(path) != kept:
            _replace_file(path, kept, entry["mode"], entry["uid"], entry["gid"])
            restored.append(path)
    pointed = os.path.islink(current_link or "") and os.readlink(current_link) == record["release"]
    if current_link and record["release"] and not pointed:
        _point(current_link, record["release"])
        restored.append(current_link)
    return restored


def service_started(module, service, proc="/proc"):
    """When the service's main process started (seconds since the epoch), 0 when it does not run.

    From /proc (readable without ptrace rights, unlike a process's cwd inside a container)."""
    rc, out, _ = module.run_command(["systemctl", "show", "--property=MainPID", "--value", service])
    pid = out.strip()
    if rc != 0 or pid in ("", "0"):
        return 0
    try:
        with open(f"{proc}/{pid}/stat", encoding="utf-8") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        with open(f"{proc}/stat", encoding="utf-8") as handle:
            boot = next(int(line.split()[1]) for line in handle if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return 0
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "default": "compare",
                "choices": ["compare", "record", "restore"],
            },
            "applied_dir": {"type": "path", "required": True},
            "files": {"type": "list", "elements": "path", "default": []},
            "release": {"type": "path"},
            "current_link": {"type": "path"},
            "service": {"type": "str"},
        },
        supports_check_mode=True,
    )
    p = module.params
    running = service_started(module, p["service"]) if p["service"] else None
    current = p["current_link"] if p["state"] == "compare" else None
    result = compare(p["applied_dir"], p["files"], p["release"] or "", current, running)
    if p["state"] == "compare" or module.check_mode:
        changed = p["state"] != "compare" and (result["pending"] or bool(result["stale"]))
        module.exit_json(changed=changed, **result)
    if p["state"] == "record":
        changed = record(p["applied_dir"], p["files"], p["release"] or "")
        module.exit_json(
            changed=changed, **compare(p["applied_dir"], p["files"], p["release"] or "")
        )
    restored = restore(p["applied_dir"], p["current_link"])
    module.exit_json(changed=bool(restored), restored=restored, **result)


if __name__ == "__main__":
    main()
