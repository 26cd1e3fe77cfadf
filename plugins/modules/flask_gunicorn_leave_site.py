#!/usr/bin/python
"""Take an instance off an nginx server block, in a way that can be undone until nginx -t passed."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_leave_site
short_description: Take an instance off a server block; undo it when nginx -t fails
description:
  - O(state=leave) moves the instance's locations file out of the server block O(site), and with
    it the server block (its file in sites-available, its link in sites-enabled, its locations
    directory and its TLS directory) when no other instance's locations are left on it, and the
    catch-all servers (with their throwaway certificate) when no server block with server names
    is left enabled. O(paths) are moved out too (the instance's upstream, on removal).
  - Nothing is deleted then. The files go to O(stash), which O(state=restore) puts back (a failed
    C(nginx -t)) and O(state=drop) deletes (a configuration that tested clean). A stash left by an
    interrupted run is kept and extended, so that a later restore or drop covers it too.
  - Safe in check mode, which only reports what would be moved.
options:
  name: {description: The instance name., type: str, required: true}
  state: {description: What to do., type: str, default: leave, choices: [leave, restore, drop]}
  site: {description: The server block to leave (state=leave)., type: str, default: ""}
  next_site:
    description:
      - The server block the instance goes to (state=leave). Counted among the server blocks with
        server names (unless it is the one without) even before its link is made, so that a change
        left before the new files are written keeps the catch-all servers the new block needs.
    type: str
    default: ""
  paths:
    description: Further files to move out with the instance's locations (state=leave).
    type: list
    elements: path
    default: []
  stash: {description: Where the files wait until restored or dropped., type: path, required: true}
  sites_available:
    description: nginx's sites-available.
    type: path
    default: /etc/nginx/sites-available
  sites_enabled:
    description: nginx's sites-enabled.
    type: path
    default: /etc/nginx/sites-enabled
  locations_base_dir:
    description: The directory of the server blocks' locations directories.
    type: path
    default: /etc/nginx/flask_gunicorn
  tls_base_dir:
    description: The directory of the server blocks' TLS directories.
    type: path
    default: /etc/nginx/tls
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Leave the server block the instance was on before its server names changed
  flask_gunicorn_leave_site:
    name: hello
    site: _default
    stash: /var/lib/flask_gunicorn/nginx-stash/hello
"""

RETURN = r"""
moved:
  description: The paths moved into the stash by this call (state=leave) or put back (restore).
  type: list
  elements: str
  returned: always
site_left:
  description: The server block itself went, no other instance being on it (state=leave).
  type: bool
  returned: always
"""

import contextlib
import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

SITE_PREFIX = "flask_gunicorn_site_"
CATCH_ALL_PREFIX = "flask_gunicorn_catch_all_"
# The server block of the instances without server names; it needs no catch-all server.
DEFAULT_SITE = "_default"
MANIFEST = "manifest.json"


def _conf_files(directory, prefix=""):
    try:
        entries = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(e for e in entries if e.startswith(prefix) and e.endswith(".conf"))


def plan(
    name,
    site,
    paths,
    sites_available,
    sites_enabled,
    locations_base_dir,
    tls_base_dir,
    next_site="",
):
    """What leaving site removes, as (paths that exist, whether the server block goes)."""
    locations_dir = os.path.join(locations_base_dir, site)
    own = f"{name}.conf"
    # Neighbours are the other instances' locations: the server block stays while one is left.
    neighbours = [e for e in _conf_files(locations_dir) if e != own]
    wanted = [*paths, os.path.join(locations_dir, own)]
    site_left = not neighbours
    site_file = f"{SITE_PREFIX}{site}.conf"
    if site_left:
        wanted += [
            os.path.join(sites_enabled, site_file),
            os.path.join(sites_available, site_file),
            locations_dir,
            os.path.join(tls_base_dir, site),
        ]
    # The catch-all servers answer names no server block has; without named server blocks they
    # would only clash with the default server of the instances without names.
    named_sites = [
        e
        for e in _conf_files(sites_enabled, SITE_PREFIX)
        if e != f"{SITE_PREFIX}{DEFAULT_SITE}.conf" and not (site_left and e == site_file)
    ]
    if next_site not in ("", DEFAULT_SITE, site):
        named_sites.append(f"{SITE_PREFIX}{next_site}.conf")
    if not named_sites:
        for directory in (sites_enabled, sites_available):
            wanted += [os.path.join(directory, e) for e in _conf_files(directory, CATCH_ALL_PREFIX)]
        wanted.append(os.path.join(tls_base_dir, "_catch_all"))
    return [p for p in dict.fromkeys(wanted) if os.path.lexists(p)], site_left


def _read_manifest(stash):
    try:
        with open(os.path.join(stash, MANIFEST), encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return []


def leave(stash, moving):
    """Move the paths into the stash, noting where each came from; return the manifest."""
    manifest = _read_manifest(stash)
    if not moving:
        return manifest
    os.makedirs(stash, mode=0o700, exist_ok=True)
    os.chmod(stash, 0o700)
    for path in moving:
        kept = os.path.join(stash, str(len(manifest)))
        # A link moves as a link (sites-enabled), a directory with its files and modes (TLS keys).
        shutil.move(path, kept)
        manifest.append({"path": path, "kept": kept})
        with open(os.path.join(stash, MANIFEST), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle)
    return manifest


def restore(stash):
    """Put every stashed path back, the last moved first; return them."""
    restored = []
    for entry in reversed(_read_manifest(stash)):
        if not os.path.lexists(entry["kept"]):
            continue
        # What the failed run may have put in its place again (an empty locations directory).
        if os.path.isdir(entry["path"]) and not os.path.islink(entry["path"]):
            shutil.rmtree(entry["path"])
        elif os.path.lexists(entry["path"]):
            os.unlink(entry["path"])
        os.makedirs(os.path.dirname(entry["path"]), exist_ok=True)
        shutil.move(entry["kept"], entry["path"])
        restored.append(entry["path"])
    drop(stash)
    return restored


def drop(stash):
    """Delete the stash, and the stashes' directory once empty; whether there was one."""
    if not os.path.lexists(stash):
        return False
    shutil.rmtree(stash)
    # Not while another instance's stash is there.
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(stash))
    return True


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "default": "leave", "choices": ["leave", "restore", "drop"]},
            "site": {"type": "str", "default": ""},
            "next_site": {"type": "str", "default": ""},
            "paths": {"type": "list", "elements": "path", "default": []},
            "stash": {"type": "path", "required": True},
            "sites_available": {"type": "path", "default": "/etc/nginx/sites-available"},
            "sites_enabled": {"type": "path", "default": "/etc/nginx/sites-enabled"},
            "locations_base_dir": {"type": "path", "default": "/etc/nginx/flask_gunicorn"},
            "tls_base_dir": {"type": "path", "default": "/etc/nginx/tls"},
        },
        required_if=[("state", "leave", ["site"])],
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "leave":
        moving, site_left = plan(
            p["name"],
            p["site"],
            p["paths"],
            p["sites_available"],
            p["sites_enabled"],
            p["locations_base_dir"],
            p["tls_base_dir"],
            p["next_site"],
        )
        # A stash an interrupted run left holds files nginx's configuration no longer has: the
        # configuration is to be tested and reloaded again.
        pending = bool(_read_manifest(p["stash"]))
        if not module.check_mode:
            leave(p["stash"], moving)
        module.exit_json(changed=bool(moving) or pending, moved=moving, site_left=site_left)
    if module.check_mode:
        module.exit_json(changed=os.path.lexists(p["stash"]), moved=[], site_left=False)
    if p["state"] == "restore":
        restored = restore(p["stash"])
        module.exit_json(changed=bool(restored), moved=restored, site_left=False)
    module.exit_json(changed=drop(p["stash"]), moved=[], site_left=False)


if __name__ == "__main__":
    main()
