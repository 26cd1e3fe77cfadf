#!/usr/bin/python
"""Link the shared instance folder and shared paths into a release, in one task."""

DOCUMENTATION = r"""
module: flask_gunicorn_release_links
short_description: Link the shared instance folder and the shared paths into a new release
description:
  - Replaces, inside a release being built, the instance folder Flask will use and each shared
    path with a link to the same name in O(shared_dir), which outlives releases.
  - O(instance_path) comes from the app's own code (the role asks Flask where the instance folder
    is, as the app's user). Root acts on it only when it is a plain absolute path (no C(.), C(..)
    or empty component) strictly inside O(release_dir), and when its directory, with every link
    resolved, is the same place; so a link the source shipped never leads the task elsewhere.
  - What the release holds at each path (a directory the source shipped, a file, a link) is
    removed without following links; missing parent directories are made, root's, 0755.
  - Runs in a build only, on a release that is not live yet; supports check mode (reports only).
options:
  release_dir:
    description: The release directory (root's); the app's source is in its C(src).
    type: path
    required: true
  shared_dir:
    description: The directory of the shared data (the links' targets).
    type: path
    required: true
  instance_path:
    description: Where Flask puts the instance folder; empty to link none.
    type: str
    default: ""
  shared_paths:
    description: Paths relative to the release's C(src), each linked to its path in O(shared_dir).
    type: list
    elements: str
    default: []
author: flask_gunicorn.stack contributors
"""

EXAMPLES = r"""
- name: Link the shared instance folder and shared paths into the release
  flask_gunicorn_release_links:
    release_dir: /srv/hello/releases/0123456789ab
    shared_dir: /srv/hello/shared
    instance_path: /srv/hello/releases/0123456789ab/src/instance
    shared_paths: [uploads]
"""

RETURN = r"""
links:
  description: Each link made, as C(path -> target).
  type: list
  elements: str
  returned: always
"""

import json
import os
import shutil
import stat

from ansible.module_utils.basic import AnsibleModule


class Refused(Exception):
    """The path is not one root may act on; nothing changed."""


def plain_path_inside(path, directory):
    """path is absolute, without ".", ".." or empty components, and strictly below directory."""
    if not path.startswith("/") or "\n" in path:
        return False
    parts = path.split("/")[1:]
    if any(part in ("", ".", "..") for part in parts):
        return False
    return path.startswith(directory.rstrip("/") + "/")


def resolves_to_itself(path, release_dir):
    """path's nearest existing directory has no link below release_dir (so neither has path)."""
    existing = path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    real_release = os.path.realpath(release_dir)
    return os.path.realpath(existing) == real_release + existing[len(release_dir.rstrip("/")) :]


def check_instance_path(instance_path, release_dir):
    if not plain_path_inside(instance_path, release_dir) or not resolves_to_itself(
        os.path.dirname(instance_path), release_dir
    ):
        raise Refused(
            f"Flask puts the instance folder at {json.dumps(instance_path)}, outside the release"
            f" {release_dir}: the role links the shared instance folder only inside the release,"
            ' at a path without links, "." or "..".'
        )


def remove(path):
    """Remove what path holds; a link is removed itself, a directory with what it holds."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        # rmtree never follows a link it finds inside.
        shutil.rmtree(path)
    else:
        os.unlink(path)


def make_parents(path):
    """Make the missing directories of path's directory, root's, 0755."""
    missing = []
    directory = os.path.dirname(path)
    while not os.path.lexists(directory):
        missing.append(directory)
        directory = os.path.dirname(directory)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)
        os.chmod(directory, 0o755)


def plan(release_dir, shared_dir, instance_path, shared_paths):
    """(path in the release, link target) pairs, each path checked before anything changes."""
    links = []
    if instance_path:
        check_instance_path(instance_path, release_dir)
        links.append((instance_path, os.path.join(shared_dir, "instance")))
    source = os.path.join(release_dir, "src")
    for relative in shared_paths:
        path = os.path.join(source, relative)
        if not plain_path_inside(path, source) or not resolves_to_itself(
            os.path.dirname(path), release_dir
        ):
            raise Refused(
                f"shared_paths: {json.dumps(relative)} is not a plain relative path inside the"
                " release, or a link the source ships is on its way."
            )
        links.append((path, os.path.join(shared_dir, relative)))
    return links


def make_links(links):
    for path, target in links:
        remove(path)
        make_parents(path)
        os.symlink(target, path)


def main():
    module = AnsibleModule(
        argument_spec={
            "release_dir": {"type": "path", "required": True},
            "shared_dir": {"type": "path", "required": True},
            "instance_path": {"type": "str", "default": ""},
            "shared_paths": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        links = plan(p["release_dir"], p["shared_dir"], p["instance_path"], p["shared_paths"])
        if not module.check_mode:
            make_links(links)
    except Refused as refused:
        module.fail_json(msg=str(refused))
    except OSError as error:
        module.fail_json(msg=f"{json.dumps(error.filename)}: {error.strerror}.")
    module.exit_json(changed=bool(links), links=[f"{path} -> {target}" for path, target in links])


if __name__ == "__main__":
    main()
