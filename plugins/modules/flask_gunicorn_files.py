#!/usr/bin/python
"""Root's directories and files of an instance, in one task: each written only when it differs."""

DOCUMENTATION = r"""
module: flask_gunicorn_files
short_description: Make an instance's account, directories and files in one task
description:
  - Creates the system account O(account) when it is missing (or corrects its group, comment, home
    and shell); creates the directories O(directories) in their order and sets their owner, group
    and mode; writes each file of O(files) when its content, owner, group or mode differs, by a
    rename in its directory, so a reader sees the old file or the new one, never half of one; last,
    creates the app-owned directories of O(app_directories).
  - One task instead of a file or template task per path: each task costs a round trip to the host.
  - For paths only root can write (configuration, units, records). A link found in place of a
    directory fails the task, naming it; a link in place of a file is replaced, never followed.
  - A file with O(files[].generate=secret_key) gets C(SECRET_KEY=<64 hex digits>) made on the host
    when it is missing or empty, and keeps what it holds otherwise; the key never leaves the host.
  - O(app_directories) is an area the app user can write. Every path component there is opened with
    O_NOFOLLOW relative to its parent's descriptor, and owner and mode are set through that
    descriptor; a link the app planted anywhere in the area fails the task, naming it, instead of
    handing the link's target to the app. The parent of its O(app_directories.root) must be root's.
  - Supports check mode and diff mode; O(files[].secret_content) and generated keys never show.
options:
  account:
    description: A system user and its own group, made first, so the paths below may name them.
    type: dict
    suboptions:
      user: {description: User name., type: str, required: true}
      group:
        description: Its primary group, made as a system group when missing.
        type: str
        required: true
      comment:
        description: The GECOS field, which marks the account as the role's own.
        type: str
        default: ""
      home: {description: Home directory (never created here)., type: path, required: true}
      shell: {description: Login shell., type: path, default: /usr/sbin/nologin}
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
  app_directories:
    description: Directories the app owns, in an area it can write; made last.
    type: dict
    suboptions:
      root: {description: The area, e.g. /srv/hello/shared., type: path, required: true}
      paths:
        description: Directories below O(app_directories.root), relative to it.
        type: list
        elements: str
        default: []
      owner: {description: Owner., type: str, required: true}
      group: {description: Group., type: str, required: true}
      mode: {description: Octal mode., type: str, default: "0750"}
author: flask_gunicorn.stack contributors
"""

EXAMPLES = r"""
- name: Write the app's configuration and units
  flask_gunicorn_files:
    account: {user: hello, group: hello, comment: "flask_gunicorn app hello", home: /srv/hello}
    directories:
      - {path: /etc/hello, group: hello, mode: "0750"}
    files:
      - {path: /etc/hello/secret_key.env, generate: secret_key, group: hello, mode: "0640"}
      - {path: /etc/hello/app.env, secret_content: "API_TOKEN=...\n", group: hello, mode: "0640"}
      - path: /etc/systemd/system/hello.service
        content: "{{ lookup('ansible.builtin.template', 'hello.service.j2') }}"
    app_directories: {root: /srv/hello/shared, paths: [instance], owner: hello, group: hello}
  register: written
  notify: Reload systemd
"""

RETURN = r"""
changed_paths:
  description: >-
    The directories and files created or changed (or that would be, in check mode), and
    C(user:<name>) or C(group:<name>) for an account created or corrected.
  type: list
  elements: str
  returned: always
"""

import errno
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


def account_commands(user, group, comment, home, shell):
    """The commands that make the system account as wanted: [] when it is already."""
    commands = []
    try:
        grp.getgrnam(group)
    except KeyError:
        commands.append(["groupadd", "--system", group])
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        commands.append(
            [
                *("useradd", "--system", "--gid", group, "--comment", comment),
                *("--home-dir", home, "--no-create-home", "--shell", shell, user),
            ]
        )
        return commands
    try:
        group_differs = entry.pw_gid != grp.getgrnam(group).gr_gid
    except KeyError:
        group_differs = True
    changes = [
        ("--gid", group, group_differs),
        ("--comment", comment, entry.pw_gecos != comment),
        ("--home", home, entry.pw_dir != home),
        ("--shell", shell, entry.pw_shell != shell),
    ]
    options = [part for option, value, differs in changes if differs for part in (option, value)]
    if options:
        commands.append(["usermod", *options, user])
    return commands


def _account_diff(commands):
    return {
        "before_header": "account",
        "after_header": "account",
        "before": "",
        "after": "".join(" ".join(command) + "\n" for command in commands),
    }


class PlantedLinkError(Refused):
    """A path component in the app's area is a link or not a directory."""


def components(relative):
    """The path components of a relative path, refusing '..', '.' and absolute paths."""
    parts = [part for part in relative.split("/") if part]
    if relative.startswith("/") or any(part in (".", "..") for part in parts):
        raise Refused(
            f"app_directories: {json.dumps(relative)} must be a relative path without '.' or"
            " '..' components."
        )
    return parts


def _open_dir(name, dir_fd, shown):
    """Open one directory component without following a link; explain what is there otherwise."""
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(name, dir_fd=dir_fd)
            raise PlantedLinkError(
                f"{shown} is a symbolic link (to {target}), not a directory: the app user can "
                "write there, so the role refuses to follow it. Remove the link and run again."
            ) from None
        raise PlantedLinkError(
            f"{shown} exists and is not a directory; remove it and run again."
        ) from None


def _settle(fd, uid, gid, mode, check_mode):
    """Give the opened directory its owner and mode; True when something changed."""
    info = os.fstat(fd)
    changed = False
    if (info.st_uid, info.st_gid) != (uid, gid):
        changed = True
        if not check_mode:
            os.fchown(fd, uid, gid)
    if stat.S_IMODE(info.st_mode) != mode:
        changed = True
        if not check_mode:
            os.fchmod(fd, mode)
    return changed


def ensure_app_dirs(root, paths, uid, gid, mode, check_mode=False):
    """Create root and root/<path> for each path, never following a link. (changed, created)."""
    root = os.path.normpath(root)
    try:
        parent_fd = os.open(os.path.dirname(root) or "/", os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        if not check_mode:
            raise
        # Check mode on a fresh host: the parent is made by a step check mode only reported.
        return True, [root]
    created = []
    changed = False
    try:
        targets = [[]] + [components(path) for path in paths]
        for parts in targets:
            walk = [os.path.basename(root), *parts]
            dir_fd = os.dup(parent_fd)
            shown = os.path.dirname(root)
            try:
                for depth, name in enumerate(walk):
                    shown = os.path.join(shown, name)
                    try:
                        next_fd = _open_dir(name, dir_fd, shown)
                    except FileNotFoundError:
                        changed = True
                        if check_mode:
                            # What would be made; nothing below it exists yet to be checked.
                            for missing in range(depth, len(walk)):
                                would_make = os.path.join(
                                    os.path.dirname(root), *walk[: missing + 1]
                                )
                                if would_make not in created:
                                    created.append(would_make)
                            break
                        created.append(shown)
                        os.mkdir(name, mode, dir_fd=dir_fd)
                        next_fd = _open_dir(name, dir_fd, shown)
                        os.fchown(next_fd, uid, gid)
                        os.fchmod(next_fd, mode)
                    os.close(dir_fd)
                    dir_fd = next_fd
                else:
                    changed = _settle(dir_fd, uid, gid, mode, check_mode) or changed
            finally:
                os.close(dir_fd)
    finally:
        os.close(parent_fd)
    return changed, created


def main():
    path_options = {
        "path": {"type": "path", "required": True},
        "owner": {"type": "str", "default": "root"},
        "group": {"type": "str", "default": "root"},
    }
    module = AnsibleModule(
        argument_spec={
            "account": {
                "type": "dict",
                "options": {
                    "user": {"type": "str", "required": True},
                    "group": {"type": "str", "required": True},
                    "comment": {"type": "str", "default": ""},
                    "home": {"type": "path", "required": True},
                    "shell": {"type": "path", "default": "/usr/sbin/nologin"},
                },
            },
            "app_directories": {
                "type": "dict",
                "options": {
                    "root": {"type": "path", "required": True},
                    "paths": {"type": "list", "elements": "str", "default": []},
                    "owner": {"type": "str", "required": True},
                    "group": {"type": "str", "required": True},
                    "mode": {"type": "str", "default": "0750"},
                },
            },
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
    changed, diffs = [], []
    try:
        if p["account"]:
            account = p["account"]
            commands = account_commands(
                account["user"], account["group"], account["comment"], account["home"],
                account["shell"],
            )  # fmt: skip
            if commands:
                changed.append(f"user:{account['user']}")
                diffs.append(_account_diff(commands))
            for command in [] if module.check_mode else commands:
                module.run_command(command, check_rc=True)
        wanted = wanted_paths(p["directories"], p["files"], module.check_mode)
        directories = wanted[: len(p["directories"])]
        files = wanted[len(p["directories"]) :]
        written, written_diffs = apply(directories, files, module.check_mode)
        changed += written
        diffs += written_diffs
        if p["app_directories"]:
            area = p["app_directories"]
            uid, gid = _ids({"path": area["root"], **area}, "app_directories", module.check_mode)
            mode = _mode({"path": area["root"], **area}, "app_directories")
            if uid == -1:
                # Check mode before the account exists: all of it would be made.
                changed.append(area["root"])
            else:
                area_changed, created = ensure_app_dirs(
                    area["root"], area["paths"], uid, gid, mode, module.check_mode
                )
                # An owner or mode corrected, nothing created: the area is what changed.
                changed += created or ([area["root"]] if area_changed else [])
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
