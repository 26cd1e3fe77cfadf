#!/usr/bin/python
"""Pack an app's source directory into a reproducible tar archive on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: flask_gunicorn_pack_source
short_description: Pack an app's source into a reproducible, mode-normalised tar archive
description:
  - Packs a directory with GNU tar into a file, byte for byte reproducible (members sorted by
    name, a fixed date, owner and group 0).
  - Normalises modes in the archive, so that extracting it as root restores no world-writable
    file and no set-uid, set-gid or sticky bit.
  - Leaves out what matches the exclude patterns, with gitignore-like rules (see O(exclude)).
  - The flask_gunicorn role runs it on the controller, before it copies the archive to a host.
  - Also returns the git commit of O(src) when it is in a git work tree, for the deploy log.
version_added: 0.1.0
author: flask-gunicorn project
options:
  src:
    description: Directory to pack; its content is archived under C(./).
    type: path
    required: true
  dest:
    description:
      - Archive file to write (overwritten). Without it, nothing is written and the module only
        returns the archive's RV(checksum), which names a release, with no file to
        remove when the release exists already.
    type: path
  exclude:
    description:
      - Patterns of paths to leave out. A pattern that starts with C(/) is anchored at O(src)
        (C(/instance) is only the top-level C(instance)); any other pattern matches at any depth
        (C(.env) is every C(.env)). A pattern may hold C(/) further on (C(static/cache)).
      - C(*), C(?) and C([...]) match within one name, never across C(/). A matching directory is
        left out with all it holds. A trailing C(/) is ignored (files and directories alike match).
      - Negation (C(!)) and C(**) are not supported and are refused.
    type: list
    elements: str
    default: []
notes:
  - Needs GNU tar (C(gtar) or C(tar)) where it runs.
"""

EXAMPLES = r"""
- name: Pack the app without secrets, local state and caches
  flask_gunicorn_pack_source:
    src: /home/me/shop
    dest: /tmp/shop.tar
    exclude: [.env, .env.*, /instance, .venv, __pycache__]
  delegate_to: localhost
"""

RETURN = r"""
checksum:
  description: The SHA-256 of the archive, in hexadecimal.
  returned: always
  type: str
cmd:
  description: The tar command that packed the source.
  returned: always
  type: list
  elements: str
commit:
  description:
    - The commit git has checked out where O(src) is, with C(-dirty) when O(src) holds changes
      not committed; empty when O(src) is not in a git work tree or git is missing.
  returned: always
  type: str
"""

import hashlib
import os
import shutil
import subprocess
import tempfile

# After the documentation, as Ansible modules have it.
from ansible.module_utils.basic import AnsibleModule

# A fixed date after 1980: wheels (zip files) cannot hold earlier ones.
MTIME = "@946684800"
# No write bit for group and others, no set-uid, set-gid or sticky bit (chmod syntax).
MODE = "go-w,a-st"


def check_pattern(pattern):
    """The reason a pattern is refused, or None."""
    if not pattern.strip("/"):
        return "an empty pattern, or one of only '/', would exclude everything"
    if pattern.startswith("!"):
        return "negation ('!') is not supported"
    if "**" in pattern:
        return "'**' is not supported: a pattern without a leading '/' matches at any depth"
    return None


def exclude_arguments(patterns):
    """tar options that leave out what the patterns match.

    tar sees the members as ./<path> (it packs "." in the source directory): an anchored pattern
    must match from that start, any other one may start after any "/".
    """
    arguments = ["--no-wildcards-match-slash"]
    for pattern in patterns:
        reason = check_pattern(pattern)
        if reason:
            raise ValueError(f"exclude pattern {pattern!r}: {reason}")
        name = pattern.rstrip("/")
        if name.startswith("/"):
            arguments += ["--anchored", f"--exclude=.{name}"]
        else:
            arguments += ["--no-anchored", f"--exclude={name}"]
    return arguments


def tar_command(tar, src, dest, patterns):
    """The GNU tar command that packs src into dest, reproducibly and with normalised modes."""
    return [
        tar,
        "--create",
        f"--file={dest}",
        "--format=gnu",
        "--sort=name",
        f"--mtime={MTIME}",
        "--owner=0",
        "--group=0",
        "--numeric-owner",
        f"--mode={MODE}",
        *exclude_arguments(patterns),
        f"--directory={src}",
        ".",
    ]


ARGUMENT_SPEC = {
    "src": {"type": "path", "required": True},
    "dest": {"type": "path"},
    "exclude": {"type": "list", "elements": "str", "default": []},
}


def controller_result(params):
    """The task's result; the action plugin of the same name runs it in Ansible's own process, on
    the controller, where the source is."""
    tar = shutil.which("gtar") or shutil.which("tar")
    if tar is None:
        return {
            "changed": False,
            "failed": True,
            "msg": "GNU tar is not installed on the controller",
        }
    try:
        cmd = tar_command(tar, params["src"], params["dest"] or "-", params["exclude"])
    except ValueError as error:
        return {"changed": False, "failed": True, "msg": str(error)}
    rc, checksum, stderr = checksum_of(cmd, params["dest"])
    if rc != 0:
        return {
            "changed": False,
            "failed": True,
            "msg": f"tar failed: {stderr.strip()}",
            "cmd": cmd,
            "rc": rc,
        }
    return {
        "changed": params["dest"] is not None,
        "cmd": cmd,
        "checksum": checksum,
        "commit": git_commit(params["src"]),
    }


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=False)
    result = controller_result(module.params)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


def git_commit(src):
    """The commit checked out at src, "-dirty" when src holds uncommitted changes; or ""."""
    git = shutil.which("git")
    if not git:
        return ""

    def run_git(*arguments):
        done = subprocess.run(
            [git, "-C", src, *arguments], capture_output=True, text=True, check=False
        )
        return done.returncode, done.stdout

    rc, head = run_git("rev-parse", "--verify", "HEAD")
    if rc != 0:
        return ""
    rc, changes = run_git("status", "--porcelain", "--", ".")
    return head.strip() + ("-dirty" if rc != 0 or changes.strip() else "")


def checksum_of(cmd, dest):
    """Run tar; (exit status, SHA-256 of the archive, stderr). Without dest, tar writes to us."""
    digest = hashlib.sha256()
    # tar's messages go to a file: a pipe left unread while its output is read could fill up and
    # stop tar for good.
    with (
        tempfile.TemporaryFile() as messages,
        subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=messages,
            env={**os.environ, "LC_ALL": "C"},
        ) as tar,
    ):
        for chunk in iter(lambda: tar.stdout.read(1 << 16), b""):
            digest.update(chunk)
        tar.wait()
        messages.seek(0)
        stderr = messages.read().decode("utf-8", errors="replace")
    if tar.returncode == 0 and dest:
        with open(dest, "rb") as archive:
            for chunk in iter(lambda: archive.read(1 << 16), b""):
                digest.update(chunk)
    return tar.returncode, digest.hexdigest(), stderr


if __name__ == "__main__":
    main()
