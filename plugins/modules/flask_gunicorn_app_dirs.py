#!/usr/bin/python
"""Create directories inside an area the app user can write, without following its links."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_app_dirs
short_description: Create app-owned directories without following links the app may have planted
description:
  - Creates O(root) and the directories O(paths) below it, owned by O(owner):O(group) with O(mode).
  - Every path component is opened with O_NOFOLLOW relative to its parent's file descriptor, and
    owner and mode are set through that descriptor, so a symbolic link the app user put anywhere
    in the area makes the module fail, naming the path, instead of handing the link's target to
    the app user.
  - The parent of O(root) must not be writable by the app (the role makes it root's).
options:
  root:
    description: Absolute path of the app-writable area (e.g. /srv/hello/shared).
    type: path
    required: true
  paths:
    description: Directories to create below O(root), relative to it; each component is checked.
    type: list
    elements: str
    default: []
  owner:
    description: User name owning the directories.
    type: str
    required: true
  group:
    description: Group name owning the directories.
    type: str
    required: true
  mode:
    description: Octal mode of the directories, e.g. "0750".
    type: str
    default: "0750"
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Create the shared instance folder
  flask_gunicorn_app_dirs:
    root: /srv/hello/shared
    paths: [instance, uploads/images]
    owner: hello
    group: hello
"""

RETURN = r"""
created:
  description: Directories that were created (or would be, in check mode).
  returned: always
  type: list
  elements: str
"""

import errno
import grp
import os
import pwd
import stat

from ansible.module_utils.basic import AnsibleModule


class PlantedLinkError(Exception):
    """A path component the module must not follow is a link or not a directory."""


def components(relative):
    """The path components of a relative path, refusing '..', '.' and absolute paths."""
    parts = [part for part in relative.split("/") if part]
    if relative.startswith("/") or any(part in (".", "..") for part in parts):
        raise ValueError(f"{relative!r} must be a relative path without '.' or '..' components")
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


def ensure_dirs(root, paths, uid, gid, mode, check_mode=False):
    """Create root and root/<path> for each path, never following a link. (changed, created)."""
    root = os.path.normpath(root)
    try:
        parent_fd = os.open(os.path.dirname(root) or "/", os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        if not check_mode:
            raise
        # Check mode on a fresh host: the parent is made by a task that check mode only reported.
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
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "paths": {"type": "list", "elements": "str", "default": []},
            "owner": {"type": "str", "required": True},
            "group": {"type": "str", "required": True},
            "mode": {"type": "str", "default": "0750"},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not os.path.isabs(params["root"]):
        module.fail_json(msg=f"root must be an absolute path, got {params['root']!r}")
    try:
        uid = pwd.getpwnam(params["owner"]).pw_uid
        gid = grp.getgrnam(params["group"]).gr_gid
    except KeyError as error:
        if module.check_mode:
            # The account is created by an earlier task that check mode only reported.
            module.exit_json(changed=True, created=[params["root"]])
        module.fail_json(msg=f"no such user or group: {error}")
    try:
        changed, created = ensure_dirs(
            params["root"], params["paths"], uid, gid, int(params["mode"], 8), module.check_mode
        )
    except (PlantedLinkError, ValueError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=changed, created=created)


if __name__ == "__main__":
    main()
