#!/usr/bin/python
"""Root's directories and files of an instance, in one task: each written only when it differs."""

DOCUMENTATION = r"""
module: flask_gunicorn_files
short_description: Make root's directories and write files of an instance in one task
description:
  - Creates the directories O(directories) in their order and sets their owner, group and mode;
    then writes each file of O(files) when its content, owner, group or mode differs, by a rename
    in its directory, so a reader sees the old file or the new one, never half of one.
  - One task instead of a file or template task per path: each task costs a round trip to the host.
  - For paths only root can write (configuration, units, records). A link found in place of a
    directory fails the task, naming it; a link in place of a file is replaced, never followed.
  - A file with O(files[].generate=secret_key) gets C(SECRET_KEY=<64 hex digits>) made on the host
    when it is missing or empty, and keeps what it holds otherwise; the key never leaves the host.
  - Supports check mode and diff mode; O(files[].secret_content) and generated keys never show.
options:
  directories:
    description: Directories to create, parents first.
    type: list
    elements: dict
    default: []
    suboptions:
      path: {description: Absolute path., type: path, required: true}
      owner: {description: Owner., type: str, default: root}
      group: {description: Group., type: str, default: root}
      mode: {description: Octal mode., type: str, default: "0755"}
  files:
    description: Files to write, in their order.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path; its directory must exist or be in O(directories).
        type: path
        required: true
      content:
        description: What the file holds (or O(files[].secret_content), or O(files[].generate)).
        type: str
      secret_content:
        description: What the file holds, never shown in output or diffs.
        type: str
      generate:
        description: C(secret_key) makes the content on the host once (see the description).
        type: str
        choices: [secret_key]
      owner: {description: Owner., type: str, default: root}
      group: {description: Group., type: str, default: root}
      mode: {description: Octal mode., type: str, default: "0644"}
author: flask_gunicorn.stack contributors
"""

EXAMPLES = r"""
- name: Write the app's configuration and units
  flask_gunicorn_files:
    directories:
      - {path: /etc/hello, group: hello, mode: "0750"}
    files:
      - {path: /etc/hello/secret_key.env, generate: secret_key, group: hello, mode: "0640"}
      - {path: /etc/hello/app.env, secret_content: "API_TOKEN=...\n", group: hello, mode: "0640"}
      - path: /etc/systemd/system/hello.service
        content: "{{ lookup('ansible.builtin.template', 'hello.service.j2') }}"
  register: written
  notify: Reload systemd
"""

RETURN = r"""
changed_paths:
  description: The directories and files created or changed (or that would be, in check mode).
  type: list
  elements: str
  returned: always
"""

import grp
import json
import os
import pwd
import secrets
import stat
import tempfile
from collections import namedtuple

from ansible.module_utils.basic import AnsibleModule

# What is wanted at a path; content None for a directory, or for a generated key already there.
Wanted = namedtuple("Wanted", "path content mode uid gid secret generate")


class Refused(Exception):
    """The task cannot do what it is asked; nothing (more) changed."""


def secret_key_line():
    return f"SECRET_KEY={secrets.token_hex(32)}\n".encode()


def _lstat(path):
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def directory_change(wanted):
    """(what differs, for the diff) or None when the directory is as wanted."""
    info = _lstat(wanted.path)
    if info is None:
        return "absent"
    if not stat.S_ISDIR(info.st_mode):
        raise Refused(
            f"{json.dumps(wanted.path)} is a link or a file, not a directory: the task never"
            " follows a link nor replaces a file with a directory. Remove it and run again."
        )
    if (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) != (
        wanted.mode,
        wanted.uid,
        wanted.gid,
    ):
        return "attributes"
    return None


def file_change(wanted):
    """(before content or None, whether it differs) for a file; a link counts as no file."""
    info = _lstat(wanted.path)
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise Refused(
            f"{json.dumps(wanted.path)} is a directory, not a file. Nothing more changed."
        )
    if info is None or not stat.S_ISREG(info.st_mode):
        return None, True
    before = _read(wanted.path)
    # A generated key that is there stays; only its owner and mode are the task's.
    content_differs = not (wanted.generate and before.strip()) and wanted.content != before
    attributes_differ = (stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid) != (
        wanted.mode,
        wanted.uid,
        wanted.gid,
    )
    return before, content_differs or attributes_differ


def make_directory(wanted):
    info = _lstat(wanted.path)
    if info is None:
        os.mkdir(wanted.path, 0o700)
    # O_NOFOLLOW | O_DIRECTORY: a link put in its place since the check is refused.
    fd = os.open(wanted.path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, wanted.uid, wanted.gid)
        os.fchmod(fd, wanted.mode)
    finally:
        os.close(fd)


def write_file(wanted, before):
    """Replace the file by a rename in its directory; a kept key is rewritten with its content."""
    content = wanted.content
    if wanted.generate:
        content = before if before and before.strip() else secret_key_line()
    directory, name = os.path.split(wanted.path)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{name}.", suffix=".flask_gunicorn", dir=directory
    )
    try:
        # mkstemp made it 0600: a secret is never readable by others, not even for a moment.
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fchown(out.fileno(), wanted.uid, wanted.gid)
            os.fchmod(out.fileno(), wanted.mode)
            os.fsync(out.fileno())
        # rename replaces a link or a file at the path itself, never what a link points at.
        os.rename(temporary, wanted.path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def _ids(entry, what, check_mode):
    try:
        uid = pwd.getpwnam(entry["owner"]).pw_uid
        gid = grp.getgrnam(entry["group"]).gr_gid
    except KeyError:
        if check_mode:
            # The run that would create the account has not run: the path would change.
            return -1, -1
        raise Refused(
            f"{what}: {json.dumps(entry['path'])} names the owner {json.dumps(entry['owner'])}"
            f" and the group {json.dumps(entry['group'])}; one of them does not exist."
        ) from None
    return uid, gid


def _mode(entry, what):
    try:
        return int(entry["mode"], 8)
    except ValueError:
        raise Refused(
            f"{what}: {json.dumps(entry['path'])} has mode {json.dumps(entry['mode'])},"
            " not an octal one."
        ) from None


def wanted_paths(directories, files, check_mode=False):
    """The options as Wanted tuples: ids for names, numbers for modes, bytes for content."""
    result = []
    for entry in directories:
        uid, gid = _ids(entry, "directories", check_mode)
        result.append(
            Wanted(entry["path"], None, _mode(entry, "directories"), uid, gid, False, None)
        )
    for entry in files:
        given = [
            key for key in ("content", "secret_content", "generate") if entry.get(key) is not None
        ]
        if len(given) != 1:
            raise Refused(
                f"files: {json.dumps(entry['path'])} needs one of content, secret_content and"
                f" generate; it has {json.dumps(given)}."
            )
        uid, gid = _ids(entry, "files", check_mode)
        content = entry.get("content")
        if content is None:
            content = entry.get("secret_content")
        result.append(
            Wanted(
                entry["path"],
                None if content is None else content.encode("utf-8"),
                _mode(entry, "files"),
                uid,
                gid,
                entry.get("content") is None,
                entry.get("generate"),
            )
        )
    for wanted in result:
        if not os.path.isabs(wanted.path):
            raise Refused(f"{json.dumps(wanted.path)} is not an absolute path. Nothing changed.")
    return result


def _shown(content, secret):
    if content is None:
        return ""
    if secret:
        return "(secret content, not shown)\n"
    return content.decode("utf-8", errors="replace")


def apply(directories, files, check_mode=False):
    """Make the paths as wanted; (changed paths, diffs). Directories first, in their order."""
    changed, diffs = [], []
    for wanted in directories:
        difference = directory_change(wanted)
        if difference is None:
            continue
        changed.append(wanted.path)
        diffs.append(
            {
                "before": {
                    "path": wanted.path,
                    "state": "absent" if difference == "absent" else "directory",
                },
                "after": {"path": wanted.path, "state": "directory", "mode": f"{wanted.mode:04o}"},
            }
        )
        if not check_mode:
            make_directory(wanted)
    for wanted in files:
        before, differs = file_change(wanted)
        if not differs:
            continue
        changed.append(wanted.path)
        after = before if wanted.generate and before and before.strip() else wanted.content
        diffs.append(
            {
                "before_header": wanted.path,
                "after_header": f"{wanted.path} (mode {wanted.mode:04o})",
                "before": _shown(before, wanted.secret),
                "after": _shown(after if after is not None else b"", wanted.secret),
            }
        )
        if not check_mode:
            write_file(wanted, before)
    return changed, diffs


def main():
    path_options = {
        "path": {"type": "path", "required": True},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
    }
    module = AnsibleModule(
        argument_spec={
            "directories": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {**path_options, "mode": {"type": "str", "default": "0755"}},
            },
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    **path_options,
                    "mode": {"type": "str", "default": "0644"},
                    "content": {"type": "str"},
                    "secret_content": {"type": "str", "no_log": True},
                    "generate": {"type": "str", "choices": ["secret_key"]},
                },
            },
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        wanted = wanted_paths(p["directories"], p["files"], module.check_mode)
        directories = wanted[: len(p["directories"])]
        files = wanted[len(p["directories"]) :]
        changed, diffs = apply(directories, files, module.check_mode)
    except Refused as refused:
        module.fail_json(msg=str(refused))
    except OSError as error:
        module.fail_json(msg=f"{json.dumps(error.filename)}: {error.strerror}.")
    result = {"changed": bool(changed), "changed_paths": changed}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
