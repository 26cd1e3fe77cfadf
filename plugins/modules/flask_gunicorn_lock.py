#!/usr/bin/python
"""One run at a time on a host: a lock that names the ansible-playbook process holding it."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_lock
short_description: Keep two runs of the role from working on one host at once
description:
  - O(state=owner) runs on the controller (delegate_to localhost) and names this run by the
    ansible-playbook process it belongs to (host name, process id, start time).
  - O(state=alive) runs on the controller and tells whether a named run still runs there. A run of
    another controller counts as alive until its lock is older than O(stale_after) seconds.
  - O(state=read), O(state=acquire) and O(state=release) run on the host, on the lock file O(path).
    A run killed without releasing its lock leaves it to the next run of the same controller, which
    sees that the holder is gone; acquire replaces only the holder it was told to replace.
options:
  state:
    type: str
    choices: [owner, alive, read, acquire, release]
    required: true
    description: What to do.
  path:
    type: path
    default: /run/flask_gunicorn.lock
    description:
      - The host's lock file, in a directory only root writes (not the world-writable /run/lock,
        where another user could put a link where root writes).
  owner:
    type: str
    description: This run's name (from O(state=owner)), for acquire and release.
  holder:
    type: str
    default: ""
    description: The run that holds the lock (alive), or that acquire may replace.
  since:
    type: float
    default: 0
    description: When the holder took the lock (seconds since the epoch), for alive.
  stale_after:
    type: int
    default: 7200
    description: Seconds after which another controller's lock counts as abandoned.
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Name this run
  flask_gunicorn_lock:
    state: owner
  delegate_to: localhost
"""

RETURN = r"""
owner:
  description: This run's name (owner).
  type: str
  returned: when state is owner
holder:
  description: Who holds the lock (read, acquire).
  type: str
  returned: when state is read or acquire
since:
  description: When the holder took it (read; acquire when it did not acquire, 0 otherwise).
  type: float
  returned: when state is read or acquire
alive:
  description: Whether the holder still runs (alive).
  type: bool
  returned: when state is alive
acquired:
  description: Whether this run holds the lock now (acquire).
  type: bool
  returned: when state is acquire
"""

import errno
import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule


def _cmdline(pid, proc):
    try:
        with open(f"{proc}/{pid}/cmdline", "rb") as handle:
            return [part.decode(errors="replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def _stat(pid, proc):
    """(parent pid, start time in clock ticks) of a process, or None."""
    try:
        with open(f"{proc}/{pid}/stat", encoding="utf-8") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[19]


def _is_playbook(pid, proc):
    return any(os.path.basename(part) == "ansible-playbook" for part in _cmdline(pid, proc)[:2])


def run_name(pid=None, proc="/proc", hostname=None):
    """host:pid:start of the ansible-playbook process this one runs under (or of this process).

    Its workers are forks with the same command line, and die after each task: the name is the
    topmost of the ansible-playbook processes among the ancestors, the one the whole run lives in.
    """
    pid = pid or os.getpid()
    hostname = hostname or socket.gethostname()
    found = None
    current = pid
    while current > 1:
        info = _stat(current, proc)
        if info is None:
            break
        if _is_playbook(current, proc):
            found = (current, info[1])
        elif found:
            break
        current = info[0]
    if found is None:
        info = _stat(pid, proc)
        found = (pid, info[1] if info else 0)
    return f"{hostname}:{found[0]}:{found[1]}"


def alive(holder, since, stale_after, proc="/proc", hostname=None, now=None):
    """Whether the run named holder still runs; another controller's while its lock is fresh."""
    hostname = hostname or socket.gethostname()
    try:
        host, pid, start = holder.rsplit(":", 2)
        pid = int(pid)
    except ValueError:
        return False
    if host != hostname:
        return (now or time.time()) - since < stale_after
    info = _stat(pid, proc)
    return info is not None and info[1] == start


class UnsafeLock(Exception):
    """A link where the lock goes, or a directory others can write: root never writes there."""


def _check_directory(path):
    directory = os.path.dirname(path) or "."
    info = os.stat(directory)
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise UnsafeLock(
            f"{directory} is writable by other users: put the lock where only root writes"
        )


def read(path):
    """(holder, since) of the lock file, ("", 0) when free. A link there is never followed."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return "", 0.0
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafeLock(f"{path} is a link: remove it, the lock is a plain file") from None
        raise
    with os.fdopen(descriptor, encoding="utf-8") as handle:
        return handle.read().strip(), os.fstat(handle.fileno()).st_mtime


def acquire(path, owner, replaceable):
    """Take the lock when it is free, ours, or held by replaceable; (acquired, holder, since).

    since is when the holder took the lock: what state=alive needs to tell whether it still runs.
    """
    _check_directory(path)
    holder, since = read(path)
    if holder and holder not in (owner, replaceable):
        return False, holder, since
    temporary = f"{path}.{os.getpid()}"
    if os.path.lexists(temporary):
        # Left by a killed run that had this process id; unlink(2) never follows a link.
        os.unlink(temporary)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(temporary, flags, 0o644), "w", encoding="utf-8") as handle:
        handle.write(owner + "\n")
    if holder:
        os.rename(temporary, path)
        return True, owner, 0.0
    try:
        # link(2) fails when another run created the file meanwhile: exactly one wins.
        os.link(temporary, path)
    except FileExistsError:
        return (False, *read(path))
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return True, owner, 0.0


def release(path, owner):
    """Give the lock up when this run holds it; True when it did."""
    if read(path)[0] != owner:
        return False
    os.unlink(path)
    return True


ARGUMENT_SPEC = {
    "state": {
        "type": "str",
        "required": True,
        "choices": ["owner", "alive", "read", "acquire", "release"],
    },
    "path": {"type": "path", "default": "/run/flask_gunicorn.lock"},
    "owner": {"type": "str"},
    "holder": {"type": "str", "default": ""},
    "since": {"type": "float", "default": 0},
    "stale_after": {"type": "int", "default": 7200},
}


def controller_result(params):
    """The result of the states that ask about the controller (owner, alive), read by the action
    plugin of the same name in Ansible's own process; None for those that run on the host."""
    if params["state"] == "owner":
        return {"changed": False, "owner": run_name()}
    if params["state"] == "alive":
        return {
            "changed": False,
            "alive": alive(params["holder"], params["since"], params["stale_after"]),
        }
    return None


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        run(module)
    except UnsafeLock as error:
        module.fail_json(msg=str(error))


def run(module):
    p = module.params
    on_controller = controller_result(p)
    if on_controller is not None:
        module.exit_json(**on_controller)
    if p["state"] == "read":
        holder, since = read(p["path"])
        module.exit_json(changed=False, holder=holder, since=since)
    if not p["owner"]:
        module.fail_json(msg="owner is required to acquire or release the lock")
    if module.check_mode:
        holder, since = read(p["path"])
        acquired = holder in ("", p["owner"], p["holder"])
        module.exit_json(changed=False, acquired=acquired, holder=holder, since=since)
    if p["state"] == "acquire":
        acquired, holder, since = acquire(p["path"], p["owner"], p["holder"])
        module.exit_json(changed=False, acquired=acquired, holder=holder, since=since)
    module.exit_json(changed=False, released=release(p["path"], p["owner"]))


if __name__ == "__main__":
    main()
