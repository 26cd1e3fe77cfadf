#!/usr/bin/python
"""Release bookkeeping: the history of releases that went live, rollback's target, pruning."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_releases
short_description: Read and record the release history, choose the rollback target, prune releases
description:
  - The history file O(history_file) lists release ids, one a line, in the order they went live. A
    release that went live twice (a rollback, a redeploy) is in it twice. Rollback and pruning
    follow it, never directory dates.
  - O(state=read) reads only. It returns the history, the release the link O(current_link) names
    and the rollback target, the release that went live before the serving one. A release that
    goes live again right after the one it followed (a rollback) takes that one off the way back,
    so a second rollback goes back one release more, never forward to the release rolled back
    from. When the link names another release than the last of the history (a run killed after its
    switch), the target is the last release of the history, the last that proved healthy. When
    there is no target, or its directory in O(releases_dir) is gone or incomplete, it returns the
    reason in RV(rollback_refusal) and leaves the refusal to the caller.
  - O(state=record) appends O(release) to the history unless it is the last entry already. The new
    history is written to a temporary file in the same directory, owned by root with mode 0644, and
    renamed over the old one; a link at O(history_file) is refused, never followed.
  - O(state=prune) removes the directories in O(releases_dir) that are not kept. Kept are the
    newest O(keep_releases) releases by their last time live, O(release) counted as the newest,
    and always O(release) and the release O(current_link) names. Whatever never reached the history
    goes, such as a failed build or a release its health check refused. Only directories are
    removed, with everything in them; a link in O(releases_dir), or inside a removed release, is
    never followed.
  - O(state=plan) reads only, before a deploy builds or switches anything. RV(complete) says
    whether O(release) is complete in O(releases_dir) (it holds C(.complete), built before and
    reused as it is). RV(owed) says whether O(state=record_and_prune) would change anything now
    (the history does not end with O(release), or a directory is not kept because O(keep_releases)
    was lowered or a failed build or a refused release is left). A run that does not go live
    records and prunes only when it is owed, and saves that round trip otherwise.
  - With a non-empty O(entry), O(state=record) and O(state=record_and_prune) also append it, after
    the history, as one JSON line to O(log_file), the append-only deploy log (opened with
    C(O_APPEND), never through a link), with the time and the release added; the role's deploy
    gives one only when the run went live, so a run that changed nothing writes nothing.
  - O(state=list) reads only. It returns every release on the host with what the deploy log says
    of its last time live (when, action, source, git commit, who ran it, health) and whether it
    serves.
  - In check mode nothing changes; O(state=record) and O(state=prune) report what would change, and
    the diff in diff mode.
options:
  state:
    description:
      - read, record or prune; record_and_prune records the release, then prunes, in one task;
        plan says whether the release is complete and whether record_and_prune is owed;
        list reads the releases with the deploy log.
    type: str
    choices: [read, plan, record, prune, record_and_prune, list]
    default: read
  history_file:
    description: The history file, one release id a line.
    type: path
    required: true
  releases_dir:
    description: The directory holding one directory per release, named by its id.
    type: path
  current_link:
    description: The link that names the serving release.
    type: path
  release:
    description: The id of the release that serves now (record, prune).
    type: str
  keep_releases:
    description: How many releases prune keeps, the serving one included; 1 or more.
    type: int
    default: 5
  name:
    description: The app, named at the start of the rollback refusal.
    type: str
    default: The app
  log_file:
    description: The deploy log, one JSON object a line (record, record_and_prune, list).
    type: path
  entry:
    description:
      - What record and record_and_prune append to O(log_file) besides the time and O(release)
        (action, source, ...); nothing when empty.
    type: dict
    default: {}
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Read the history and the rollback target
  flask_gunicorn_releases:
    history_file: /srv/hello/history
    releases_dir: /srv/hello/releases
    current_link: /srv/hello/current
    name: hello
  register: releases

- name: Append the serving release to the history
  flask_gunicorn_releases:
    state: record
    history_file: /srv/hello/history
    release: 0123456789ab

- name: Remove the releases beyond the newest five
  flask_gunicorn_releases:
    state: prune
    history_file: /srv/hello/history
    releases_dir: /srv/hello/releases
    current_link: /srv/hello/current
    release: 0123456789ab
    keep_releases: 5
"""

RETURN = r"""
history:
  description: The release ids in the order they went live (record, after the append).
  type: list
  elements: str
  returned: always
serving:
  description: The release id the current link names, empty without a link.
  type: str
  returned: when state is read or prune
rollback_target:
  description: The release id to roll back to, empty when there is none.
  type: str
  returned: when state is read
rollback_refusal:
  description: Why there is nothing to roll back to, naming the history; empty when there is.
  type: str
  returned: when state is read
logged:
  description: The line appended to the deploy log, empty when none was.
  type: str
  returned: when state is record or record_and_prune
releases:
  description:
    - Each release directory, oldest first by its last time live, with C(id), C(serving),
      C(complete) and the deploy log's last entry for it (C(time), C(action), C(source),
      C(commit), C(user), C(health)), empty strings when it has none.
  type: list
  elements: dict
  returned: when state is list
kept:
  description: The release ids prune keeps, the newest live first, then the one current names.
  type: list
  elements: str
  returned: when state is prune
removed:
  description: The release directories removed (or that would be, in check mode), sorted.
  type: list
  elements: str
  returned: when state is prune
complete:
  description: O(release) has a complete directory in O(releases_dir).
  type: bool
  returned: when state is plan
owed:
  description: O(state=record_and_prune) would change the history or remove a release now.
  type: bool
  returned: when state is plan
"""

import errno
import json
import os
import re
import shutil
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

# A release id is a plain name in the releases directory: no path, no dot file.
RELEASE_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9._-]*\Z")


class Refused(Exception):
    """Input or a file on the host the module does not act on; nothing changed."""


def _quote(value):
    return json.dumps(value)


def read_history(history_file):
    """The release ids in the history, or None when there is no history file.

    A link at its place is refused, never followed."""
    try:
        descriptor = os.open(history_file, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise Refused(
                f"{_quote(history_file)} is a link: remove it, the history is a plain file."
            ) from None
        raise Refused(f"Reading {_quote(history_file)} failed: {error.strerror}.") from None
    try:
        with os.fdopen(descriptor, "rb") as handle:
            content = handle.read()
    except OSError as error:
        raise Refused(f"Reading {_quote(history_file)} failed: {error.strerror}.") from None
    return content.decode("utf-8", errors="replace").split()


def serving(current_link):
    """The release id the current link names, empty when it is no link."""
    try:
        target = os.readlink(current_link)
    except OSError:
        return ""
    return os.path.basename(os.path.normpath(target))


def live_path(history):
    """The releases a rollback walks back through, the serving one last.

    A release that goes live right after one it followed went back to it (a rollback, or a
    redeploy of the previous release): the one it left is off the way back. Any other goes on
    top, a release that went live before included.
    """
    path = []
    for release in history:
        if len(path) >= 2 and release == path[-2]:
            path.pop()
        elif not path or release != path[-1]:
            path.append(release)
    return path


def rollback_target(history, current):
    """The release that went live before current, empty when there is none.

    That is for current on the last release of the history. When it names another (a run killed
    after its switch, whether or not that release went live before), the target is the last
    release of the history, the last one that proved healthy.
    """
    if not history:
        return ""
    if current != history[-1]:
        return history[-1]
    path = live_path(history)
    return path[-2] if len(path) >= 2 else ""


def is_release(releases_dir, release):
    """Whether release is a complete release directory (a plain name, no link)."""
    if not RELEASE_NAME.match(release):
        return False
    path = os.path.join(releases_dir, release)
    return not os.path.islink(path) and os.path.isfile(os.path.join(path, ".complete"))


def rollback_refusal(name, history_file, history, current, target, releases_dir):
    """Why rollback has nothing to go back to, naming the history; empty when it has."""
    if history is None:
        shown = f"no history at {_quote(history_file)}"
    else:
        shown = f"history {_quote(history_file)}: {_quote(history)}"
    shown += f", current names {_quote(current)}" if current else ", no current release"
    if not target:
        reason = ""
    elif is_release(releases_dir, target):
        return ""
    else:
        before = (
            f"the release before {_quote(current)}"
            if history and current == history[-1]
            else "the last release of the history"
        )
        reason = f": {_quote(target)}, {before}, is gone or incomplete in {_quote(releases_dir)}"
    return (
        f"{name} has no earlier release on this host to roll back to{reason} ({shown});"
        " nothing was changed."
    )


def read(history_file, releases_dir, current_link, name="The app"):
    """The history, the serving release, the rollback target and why there is none."""
    history = read_history(history_file)
    current = serving(current_link)
    target = rollback_target(history or [], current)
    refusal = rollback_refusal(name, history_file, history, current, target, releases_dir)
    return {
        "history": history or [],
        "serving": current,
        "rollback_target": "" if refusal else target,
        "rollback_refusal": refusal,
    }


def _check_release(release):
    if not RELEASE_NAME.match(release or ""):
        raise Refused(
            f"release: {_quote(release)} is not a release id (a plain name in the releases"
            " directory). Nothing changed."
        )


def _text(ids):
    return "".join(f"{release}\n" for release in ids)


def _write(path, content, uid, gid, mode):
    """Write content to a temporary file beside path and rename it over path."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.new-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.chown(temporary, uid, gid)
        os.chmod(temporary, mode)
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def record(history_file, release, check_mode=False, uid=0, gid=0, mode=0o644):
    """Append release to the history unless it is its last entry: (changed, before, after)."""
    _check_release(release)
    before = read_history(history_file) or []
    if before and before[-1] == release:
        return False, before, before
    after = [*before, release]
    if not check_mode:
        try:
            _write(history_file, _text(after), uid, gid, mode)
        except OSError as error:
            raise Refused(f"Writing {_quote(history_file)} failed: {error.strerror}.") from None
    return True, before, after


def plan_prune(releases_dir, history, release, current, keep):
    """(kept ids, release directories to remove): the newest keep releases by their last time
    live, release counted as the newest, and always release and current, are kept."""
    if keep < 1:
        raise Refused(f"keep_releases: {_quote(keep)} must be 1 or more. Nothing changed.")
    _check_release(release)
    kept = list(dict.fromkeys(reversed([*history, release])))[:keep]
    if current and current not in kept:
        kept.append(current)
    try:
        with os.scandir(releases_dir) as entries:
            remove = sorted(
                entry.path
                for entry in entries
                # Only directories: a link is never followed, nor removed.
                if entry.is_dir(follow_symlinks=False) and entry.name not in kept
            )
    except FileNotFoundError:
        remove = []
    return kept, remove


def plan(history_file, releases_dir, current_link, release, keep):
    """(whether release is complete, whether record_and_prune would change anything now)."""
    _check_release(release)
    history = read_history(history_file) or []
    complete = is_release(releases_dir, release)
    unrecorded = not history or history[-1] != release
    _, remove = plan_prune(releases_dir, history, release, serving(current_link), keep)
    return complete, unrecorded or bool(remove)


def remove_releases(paths):
    """Remove each release directory; a link inside one is removed, never followed."""
    removed = []
    for path in paths:
        try:
            shutil.rmtree(path)
        except OSError as error:
            raise Refused(
                f"Removing {_quote(path)} failed: {error.strerror or error}."
                f" Removed before it: {_quote(removed)}."
            ) from None
        removed.append(path)
    return removed


def prune_diff(releases_dir, remove):
    """An Ansible diff of the releases directory's listing."""
    try:
        with os.scandir(releases_dir) as entries:
            names = sorted(entry.name for entry in entries if entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        names = []
    gone = {os.path.basename(path) for path in remove}
    return {
        "before_header": releases_dir,
        "after_header": releases_dir,
        "before": _text(names),
        "after": _text(name for name in names if name not in gone),
    }


def append_log(log_file, entry, check_mode=False):
    """Append entry as one JSON line; the log is only ever appended to, never through a link."""
    line = json.dumps(entry, sort_keys=True) + "\n"
    if check_mode:
        return line
    try:
        descriptor = os.open(
            log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644
        )
    except OSError as error:
        raise Refused(f"Opening {_quote(log_file)} failed: {error.strerror}.") from None
    try:
        os.write(descriptor, line.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return line


def read_log(log_file):
    """The deploy log's entries; lines that are not JSON objects are skipped."""
    try:
        descriptor = os.open(log_file, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return []
    with os.fdopen(descriptor, "rb") as handle:
        lines = handle.read().decode("utf-8", errors="replace").splitlines()
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


LOG_FIELDS = ("time", "action", "source", "commit", "user", "health")


def list_releases(history_file, releases_dir, current_link, log_file):
    """Every release directory, by its last time live, with its last deploy log entry."""
    history = read_history(history_file) or []
    current = serving(current_link)
    last = {}
    for entry in read_log(log_file) if log_file else []:
        if isinstance(entry.get("release"), str):
            last[entry["release"]] = entry
    try:
        with os.scandir(releases_dir) as entries:
            names = [entry.name for entry in entries if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        names = []
    order = {release: index for index, release in enumerate(history)}
    names.sort(key=lambda name: (order.get(name, -1), name))
    return [
        {
            "id": name,
            "serving": name == current,
            "complete": is_release(releases_dir, name),
            **{field: str(last.get(name, {}).get(field, "")) for field in LOG_FIELDS},
        }
        for name in names
    ]


def log_entry(p, check_mode):
    """Append O(entry), with the time and the release, to the deploy log; the line, or ""."""
    if not p["entry"]:
        return ""
    if not p["log_file"]:
        raise Refused("entry needs log_file, the deploy log to append it to.")
    entry = {
        **p["entry"],
        "release": p["release"],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    return append_log(p["log_file"], entry, check_mode)


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {
                "type": "str",
                "default": "read",
                "choices": ["read", "plan", "record", "prune", "record_and_prune", "list"],
            },
            "history_file": {"type": "path", "required": True},
            "releases_dir": {"type": "path"},
            "current_link": {"type": "path"},
            "release": {"type": "str"},
            "keep_releases": {"type": "int", "default": 5},
            "name": {"type": "str", "default": "The app"},
            "log_file": {"type": "path"},
            "entry": {"type": "dict", "default": {}},
        },
        required_if=[
            ("state", "read", ("releases_dir", "current_link")),
            ("state", "plan", ("releases_dir", "current_link", "release")),
            ("state", "record", ("release",)),
            ("state", "prune", ("releases_dir", "current_link", "release")),
            ("state", "record_and_prune", ("releases_dir", "current_link", "release")),
            ("state", "list", ("releases_dir", "current_link")),
        ],
        supports_check_mode=True,
    )
    try:
        run(module)
    except Refused as error:
        module.fail_json(msg=str(error))


def run(module):
    p = module.params
    if p["state"] == "read":
        found = read(p["history_file"], p["releases_dir"], p["current_link"], p["name"])
        module.exit_json(changed=False, **found)
    if p["state"] == "plan":
        complete, owed = plan(
            p["history_file"], p["releases_dir"], p["current_link"], p["release"],
            p["keep_releases"],
        )  # fmt: skip
        module.exit_json(changed=False, complete=complete, owed=owed)
    if p["state"] == "list":
        releases = list_releases(
            p["history_file"], p["releases_dir"], p["current_link"], p["log_file"]
        )
        module.exit_json(changed=False, releases=releases)
    recorded, diffs = False, []
    if p["state"] in ("record", "record_and_prune"):
        recorded, before, after = record(p["history_file"], p["release"], module.check_mode)
        diffs.append(
            {
                "before_header": p["history_file"],
                "after_header": p["history_file"],
                "before": _text(before),
                "after": _text(after),
            }
        )
        logged = log_entry(p, module.check_mode)
        if p["state"] == "record":
            extra = {"diff": diffs[0]} if module._diff else {}
            module.exit_json(
                changed=recorded or bool(logged), history=after, logged=logged, **extra
            )
        # In check mode the history is not written: the prune plans with the one it would be.
        history = after
    else:
        history, logged = read_history(p["history_file"]) or [], ""
    current = serving(p["current_link"])
    kept, remove = plan_prune(p["releases_dir"], history, p["release"], current, p["keep_releases"])
    result = {
        "history": history,
        "serving": current,
        "kept": kept,
        "removed": remove,
        "logged": logged,
    }
    if module._diff:
        pruned = prune_diff(p["releases_dir"], remove)
        result["diff"] = [*diffs, pruned] if diffs else pruned
    if not module.check_mode:
        remove_releases(remove)
    module.exit_json(changed=recorded or bool(logged) or bool(remove), **result)


if __name__ == "__main__":
    main()
