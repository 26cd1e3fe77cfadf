#!/usr/bin/python
"""Change nginx's files as one transaction: nginx -t accepts all of it, or all is put back."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_nginx_change
short_description: Write, enable and remove nginx files as one change that nginx -t accepts, or none
description:
  - Writes the files O(files), links the files O(enable) into O(sites_enabled) and removes the paths
    O(remove), then runs O(test_command) (C(nginx -t)). When the test fails, or any step before it
    does, every path is put back as it was (a file with its content, mode and owner, a link with its
    target), every new path is removed, and the module fails with what the test said. The files on
    disk then stay those the running nginx was started with.
  - Each file or link is made under a temporary name in the directory of its destination and renamed
    over it, so nginx never reads half a file. A link or a file found at a destination is replaced,
    never followed. What was there is kept in memory until the test passed.
  - The test runs only when a path changed or O(pending) is true. The module never reloads nginx;
    the task reports a change, which notifies the role's handler.
  - A directory found at a destination or in O(remove) fails the module before anything changes.
    The directories the files go in must exist.
  - In check mode nothing changes; the module reports the paths that would change, and their diff in
    diff mode (never the content of O(files[].secret_content)).
options:
  files:
    description: Files to write, each with its whole content.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The content, for example rendered by the role with the template lookup.
        type: str
      secret_content:
        description:
          - Instead of O(files[].content), for a private key. Never logged, never shown in a diff
            or in the result.
        type: str
      mode:
        description: Octal mode of the file.
        type: str
        default: "0644"
      owner:
        description: User name owning the file.
        type: str
        default: root
      group:
        description: Group name owning the file.
        type: str
        default: root
  enable:
    description:
      - Files nginx reads through a link of the same name in O(sites_enabled), pointing at them.
    type: list
    elements: path
    default: []
  sites_enabled:
    description: The directory of the links of O(enable).
    type: path
    default: /etc/nginx/sites-enabled
  remove:
    description:
      - Files or links to remove, for example the distribution default site. A missing path is
        left alone.
    type: list
    elements: path
    default: []
  pending:
    description:
      - Run the test and report a change even when no path changes here, for files that an
        earlier step or an earlier run changed and the running nginx does not have yet.
    type: bool
    default: false
  owed_mark:
    description:
      - A file that says a reload is owed. When it exists, the change counts as O(pending). Before
        the first path changes, the module makes it (empty, root's, 0600), so that a run killed
        before nginx reloaded leaves the next run the reload it owes. The caller removes it once
        nginx reloaded. Its directory must exist; a link in its place is never followed.
    type: path
  test_command:
    description: The test, as an argument list; a non-zero exit status refuses the change.
    type: list
    elements: str
    default: [nginx, -t]
  failure_msg:
    description: The start of the failure message; what the test said follows it.
    type: str
    default: The nginx configuration fails the test; the previous configuration stays live.
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Write the server block and enable it, tested before it goes live
  flask_gunicorn_nginx_change:
    files:
      - dest: /etc/nginx/sites-available/hello.conf
        content: "{{ lookup('ansible.builtin.template', 'sites-available/site.conf.j2') }}"
      - dest: /etc/nginx/tls/hello/key.pem
        secret_content: "{{ lookup('ansible.builtin.file', 'hello.key', rstrip=false) }}"
        mode: "0600"
    enable: [/etc/nginx/sites-available/hello.conf]
    remove: [/etc/nginx/sites-enabled/default]
  notify: Reload nginx
"""

RETURN = r"""
changed_paths:
  description: The paths written, linked or removed (or that would be, in check mode).
  type: list
  elements: str
  returned: always
tested:
  description: Whether the test ran (and passed, when the module did not fail).
  type: bool
  returned: success
reload_needed:
  description: >-
    Whether nginx must reload to run what is on disk (a path changed, O(pending), or O(owed_mark)
    was there); then O(owed_mark) exists, outside check mode.
  type: bool
  returned: success
rc:
  description: The exit status of the test that refused the change.
  type: int
  returned: when the test failed
stdout:
  description: What the test that refused the change wrote on its standard output.
  type: str
  returned: when the test failed
stderr:
  description: What the test that refused the change wrote on its standard error (nginx -t does).
  type: str
  returned: when the test failed
"""

import contextlib
import grp
import json
import os
import pwd
import secrets
import stat
import subprocess
import tempfile
from collections import namedtuple

from ansible.module_utils.basic import AnsibleModule

# What a path holds; None for nothing. Files compare by content, mode and owner.
File = namedtuple("File", "content mode uid gid")
Link = namedtuple("Link", "target")
# One path to change: what it holds (before), what it is to hold (after).
Step = namedtuple("Step", "path before after secret")


class Refused(Exception):
    """The change cannot be made as asked; nothing changed."""


class ChangeFailed(Exception):
    """A step or the test failed; every path was put back, but those of not_restored."""

    def __init__(self, reason, rc=None, stdout="", stderr="", not_restored=()):
        super().__init__(reason)
        self.reason = reason
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.not_restored = list(not_restored)


def current(path):
    """What path holds, without following a link: None, a Link or a File."""
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if stat.S_ISLNK(info.st_mode):
        return Link(os.readlink(path))
    if not stat.S_ISREG(info.st_mode):
        raise Refused(
            f"{json.dumps(path)} is a directory or a special file, not a file or a link: "
            "the module replaces or removes only those. Nothing changed."
        )
    # O_NOFOLLOW: a link put there since the lstat is refused, not read through.
    with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as handle:
        info = os.fstat(handle.fileno())
        return File(handle.read(), stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)


def plan(files, enable=(), remove=(), sites_enabled="/etc/nginx/sites-enabled"):
    """The steps from what is on disk to what is wanted: only the paths that differ.

    files are dicts with dest, content (bytes or str), mode, uid, gid and secret; enable are the
    files to link from sites_enabled; remove the paths to remove.
    """
    wanted = []
    for entry in files:
        content = entry["content"]
        if isinstance(content, str):
            content = content.encode("utf-8")
        after = File(content, entry["mode"], entry["uid"], entry["gid"])
        wanted.append((entry["dest"], after, bool(entry.get("secret"))))
    for path in enable:
        link = os.path.join(sites_enabled, os.path.basename(path))
        if os.path.normpath(link) == os.path.normpath(path):
            raise Refused(f"enable: {json.dumps(path)} is in sites_enabled. Nothing changed.")
        wanted.append((link, Link(path), False))
    for path in remove:
        wanted.append((path, None, False))
    steps = []
    seen = set()
    for path, after, secret in wanted:
        if not os.path.isabs(path):
            raise Refused(f"{json.dumps(path)} is not an absolute path. Nothing changed.")
        if os.path.normpath(path) in seen:
            raise Refused(f"{json.dumps(path)} is given twice. Nothing changed.")
        seen.add(os.path.normpath(path))
        before = current(path)
        if before != after:
            steps.append(Step(path, before, after, secret))
    return steps


def put(path, state):
    """Make path hold state (None: nothing), by a rename in its directory; never through a link."""
    if state is None:
        # unlink removes a link itself, not its target.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    directory, name = os.path.split(path)
    # Hidden, and not ending in .conf: no include pattern of nginx's (*, *.conf) reads it, should a
    # killed run leave it behind.
    if isinstance(state, Link):
        temporary = os.path.join(directory, f".{name}.{secrets.token_hex(8)}.flask_gunicorn")
        os.symlink(state.target, temporary)
    else:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{name}.", suffix=".flask_gunicorn", dir=directory
        )
        try:
            # mkstemp made it 0600: a key is never readable by others, not even for a moment.
            with os.fdopen(handle, "wb") as out:
                out.write(state.content)
                out.flush()
                os.fchown(out.fileno(), state.uid, state.gid)
                os.fchmod(out.fileno(), state.mode)
                os.fsync(out.fileno())
        except BaseException:
            os.unlink(temporary)
            raise
    try:
        # rename replaces a link or a file at path itself, never what a link points at.
        os.rename(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def undo(done):
    """Put back what each step found, the last first; the paths that could not be put back."""
    not_restored = []
    for step in reversed(done):
        try:
            put(step.path, step.before)
        except OSError as error:
            not_restored.append(f"{step.path} ({error.strerror})")
    return not_restored


def run_test(argv):
    """Run the test command: (exit status, stdout, stderr); a missing command fails it."""
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError as error:
        return 127, "", f"{json.dumps(argv[0])} could not run: {error.strerror}"
    return completed.returncode, completed.stdout, completed.stderr


def apply(steps, test_command=("nginx", "-t"), pending=False, run=run_test):
    """Make the steps and test them; on any failure put every path back and raise ChangeFailed.

    Returns whether the test ran: only when a step changed a path, or pending is true.
    """
    done = []
    try:
        for step in steps:
            # Listed first: a step that failed halfway is put back too.
            done.append(step)
            try:
                put(step.path, step.after)
            except OSError as error:
                raise ChangeFailed(
                    f"Changing {json.dumps(step.path)} failed: {error.strerror}."
                ) from error
        if not steps and not pending:
            return False
        rc, stdout, stderr = run(list(test_command))
        if rc != 0:
            raise ChangeFailed(
                f"The test {json.dumps(' '.join(test_command))} failed with exit status {rc}.",
                rc,
                stdout,
                stderr,
            )
        return True
    except ChangeFailed as failed:
        failed.not_restored = undo(done)
        raise
    except BaseException:
        undo(done)
        raise


def owe_reload(mark):
    """Make the mark, empty and root's; an existing file is left, a link in its place refused."""
    try:
        fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise ChangeFailed(
            f"Marking the reload as owed in {json.dumps(mark)} failed: {error.strerror}."
        ) from error
    os.close(fd)


def _shown(state, secret):
    if state is None:
        return ""
    if isinstance(state, Link):
        return f"symbolic link to {state.target}\n"
    if secret:
        return "(secret content, not shown)\n"
    return state.content.decode("utf-8", errors="replace")


def _header(path, state):
    if isinstance(state, File):
        return f"{path} (mode {state.mode:04o}, uid {state.uid}, gid {state.gid})"
    return path


def diff(steps):
    """Ansible diffs of the steps, secret content left out."""
    return [
        {
            "before_header": _header(step.path, step.before),
            "after_header": _header(step.path, step.after),
            "before": _shown(step.before, step.secret),
            "after": _shown(step.after, step.secret),
        }
        for step in steps
    ]


def failure_message(start, failed):
    """The module's message: start, then what the test said, then any path not put back."""
    said = failed.stderr.strip() or failed.stdout.strip()
    if failed.rc is not None and said:
        message = f"{start} nginx said: {said}"
    else:
        message = f"{start} {failed.reason}"
    if failed.not_restored:
        message += (
            " These paths could not be put back and differ from the running configuration; fix"
            f" them before nginx reloads: {json.dumps(failed.not_restored)}"
        )
    return message


def wanted_files(params):
    """The files option with owner and group as ids and the mode as a number."""
    files = []
    for entry in params:
        shown = json.dumps(entry["dest"])
        if (entry["content"] is None) == (entry["secret_content"] is None):
            raise Refused(f"files: {shown} needs either content or secret_content.")
        try:
            mode = int(entry["mode"], 8)
        except ValueError:
            mode_shown = json.dumps(entry["mode"])
            raise Refused(f"files: {shown} has mode {mode_shown}, not an octal one.") from None
        try:
            uid = pwd.getpwnam(entry["owner"]).pw_uid
            gid = grp.getgrnam(entry["group"]).gr_gid
        except KeyError:
            raise Refused(
                f"files: {shown} names the owner {json.dumps(entry['owner'])} and the group"
                f" {json.dumps(entry['group'])}; one of them does not exist."
            ) from None
        secret = entry["secret_content"] is not None
        files.append(
            {
                "dest": entry["dest"],
                "content": entry["secret_content"] if secret else entry["content"],
                "mode": mode,
                "uid": uid,
                "gid": gid,
                "secret": secret,
            }
        )
    return files


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "dest": {"type": "path", "required": True},
                    "content": {"type": "str"},
                    "secret_content": {"type": "str", "no_log": True},
                    "mode": {"type": "str", "default": "0644"},
                    "owner": {"type": "str", "default": "root"},
                    "group": {"type": "str", "default": "root"},
                },
            },
            "enable": {"type": "list", "elements": "path", "default": []},
            "sites_enabled": {"type": "path", "default": "/etc/nginx/sites-enabled"},
            "remove": {"type": "list", "elements": "path", "default": []},
            "pending": {"type": "bool", "default": False},
            "owed_mark": {"type": "path"},
            "test_command": {"type": "list", "elements": "str", "default": ["nginx", "-t"]},
            "failure_msg": {
                "type": "str",
                "default": "The nginx configuration fails the test; the previous configuration"
                " stays live.",
            },
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        steps = plan(wanted_files(p["files"]), p["enable"], p["remove"], p["sites_enabled"])
    except Refused as refused:
        module.fail_json(msg=str(refused))
    result = {"changed_paths": [step.path for step in steps]}
    if module._diff:
        result["diff"] = diff(steps)
    owed = bool(p["owed_mark"]) and os.path.lexists(p["owed_mark"])
    pending = p["pending"] or owed
    needed = bool(steps) or pending
    if module.check_mode:
        module.exit_json(changed=needed, tested=False, reload_needed=needed, **result)
    try:
        if needed and p["owed_mark"] and not owed:
            owe_reload(p["owed_mark"])
        tested = apply(steps, p["test_command"], pending)
    except ChangeFailed as failed:
        # What the test said, for a caller that words its own message.
        extra = {}
        if failed.rc is not None:
            extra = {"rc": failed.rc, "stdout": failed.stdout, "stderr": failed.stderr}
        module.fail_json(
            msg=failure_message(p["failure_msg"], failed),
            # Only when a path could not be put back is the disk not as it was.
            changed=bool(failed.not_restored),
            **extra,
            **result,
        )
    module.exit_json(changed=needed, tested=tested, reload_needed=needed, **result)


if __name__ == "__main__":
    main()
