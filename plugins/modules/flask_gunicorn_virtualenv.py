#!/usr/bin/python
"""A release's virtualenv in one task, copied from an earlier release's when nothing differs."""

DOCUMENTATION = r"""
module: flask_gunicorn_virtualenv
short_description: Make a release's virtualenv, reusing an earlier release's when nothing differs
description:
  - Makes the virtualenv O(path) for the release whose source is O(source) and installs into it,
    in this order, the pinned requirements (C(requirements.txt) of the source), the app's own
    project (when the source has C(pyproject.toml), C(setup.cfg) or C(setup.py)) and
    O(gunicorn_requirement) when no C(gunicorn) came with them. One task instead of four.
  - A key names what decides the virtualenv's packages - the interpreter's version, the content of
    the source's requirement and project files, and O(gunicorn_requirement) - and is kept in the
    virtualenv. When a complete release in O(releases_dir) (one holding C(.complete)) has a
    virtualenv with the same key, that virtualenv is copied instead of built, and its own path in
    the scripts and C(pyvenv.cfg) is replaced by O(path); only the app's project is installed again
    (the code changed, its packages did not). A code-only redeploy then installs nothing from the
    package index.
  - Every release keeps a virtualenv of its own: no release ever writes into another's.
  - pip runs with the environment of the task (C(PIP_CACHE_DIR), ...). The build runs it as root, as
    the role did with the pip module; the app's build backend runs there too.
options:
  path:
    description: The virtualenv to make; it must not exist.
    type: path
    required: true
  source:
    description: The release's source directory.
    type: path
    required: true
  python:
    description: The interpreter the virtualenv is made with.
    type: path
    default: /usr/bin/python3
  gunicorn_requirement:
    description: What pip installs when the requirements and the project brought no Gunicorn.
    type: str
    default: gunicorn
  releases_dir:
    description: Where earlier releases are (each C(<id>/venv)); empty to never reuse one.
    type: path
    default: ""
author: flask_gunicorn.stack contributors
"""

EXAMPLES = r"""
- name: Make the release's virtualenv
  flask_gunicorn_virtualenv:
    path: /srv/hello/releases/0123456789ab/venv
    source: /srv/hello/releases/0123456789ab/src
    releases_dir: /srv/hello/releases
  environment:
    PIP_CACHE_DIR: /srv/hello/cache/pip
"""

RETURN = r"""
key:
  description: The sha256 of what decides the virtualenv's packages.
  type: str
  returned: always
reused_from:
  description: The virtualenv copied, or an empty string when this one was built.
  type: str
  returned: always
"""

import hashlib
import json
import os
import shutil
import stat

from ansible.module_utils.basic import AnsibleModule

# The files of a source that decide what pip installs; their content goes into the key.
PACKAGE_FILES = ("requirements.txt", "pyproject.toml", "setup.cfg", "setup.py")
PROJECT_FILES = PACKAGE_FILES[1:]
KEY_FILE = "flask_gunicorn-packages.json"


class Failed(Exception):
    """A step failed; the message says which and why."""


def packages_key(source, python_version, gunicorn_requirement):
    """sha256 of the interpreter, the requirement and project files, Gunicorn's requirement."""
    digest = hashlib.sha256()
    digest.update(f"python {python_version}\ngunicorn {gunicorn_requirement}\n".encode())
    for name in PACKAGE_FILES:
        path = os.path.join(source, name)
        # A link in the source (root's, unpacked) counts by what it holds, like pip would read it.
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                content = handle.read()
            digest.update(f"{name} {len(content)}\n".encode() + content)
    return digest.hexdigest()


def read_key(venv):
    try:
        with open(os.path.join(venv, KEY_FILE), encoding="utf-8") as handle:
            return json.load(handle).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def reusable(releases_dir, path, key):
    """The newest virtualenv of a complete release with this key, other than path; or None."""
    if not releases_dir or not os.path.isdir(releases_dir):
        return None
    candidates = []
    for name in os.listdir(releases_dir):
        release = os.path.join(releases_dir, name)
        venv = os.path.join(release, "venv")
        # Real directories only: a link among the releases is never followed.
        if os.path.islink(release) or venv == os.path.normpath(path):
            continue
        if not os.path.isfile(os.path.join(release, ".complete")) or os.path.islink(venv):
            continue
        if read_key(venv) == key:
            candidates.append((os.lstat(release).st_mtime, venv))
    return max(candidates)[1] if candidates else None


def copy_virtualenv(origin, path):
    """Copy origin to path (links as links, modes and times kept), then put path where the
    scripts and pyvenv.cfg name origin. Bytecode keeps working: Python fixes the file names of
    cached code as it loads it, and the copied sources keep their times."""
    shutil.copytree(origin, path, symlinks=True)
    old, new = os.fsencode(origin), os.fsencode(path)
    rewritten = [os.path.join(path, "pyvenv.cfg")]
    bin_dir = os.path.join(path, "bin")
    rewritten += [os.path.join(bin_dir, name) for name in os.listdir(bin_dir)]
    for file in rewritten:
        info = os.lstat(file)
        if not stat.S_ISREG(info.st_mode):
            continue
        with open(file, "rb") as handle:
            content = handle.read()
        # Scripts and activate files are text; a compiled launcher is left as it is.
        if old not in content or b"\0" in content:
            continue
        with open(file, "wb") as handle:
            handle.write(content.replace(old, new))


def has_project(source):
    return any(os.path.isfile(os.path.join(source, name)) for name in PROJECT_FILES)


class Builder:
    """Runs the commands of a build, failing with the command's own words."""

    def __init__(self, module):
        self.module = module

    def run(self, argv, what):
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            words = (err.strip() or out.strip())[-3000:]
            raise Failed(f"{what} failed (exit {rc}): {words}")
        return out

    def python_version(self, python):
        return self.run([python, "-c", "import sys; print(sys.version)"], "python").strip()

    def build(self, python, path, source):
        self.run([python, "-m", "venv", path], "Making the virtualenv")
        requirements = os.path.join(source, "requirements.txt")
        if os.path.isfile(requirements):
            self.pip(path, "Installing the pinned requirements", "-r", requirements)

    def pip(self, path, what, *arguments):
        self.run([os.path.join(path, "bin/python"), "-m", "pip", "install", *arguments], what)


def make(builder, params):
    """Make the virtualenv; (key, reused_from)."""
    path, source = os.path.normpath(params["path"]), params["source"]
    if os.path.lexists(path):
        raise Failed(f"{path} exists already: a release's virtualenv is made once.")
    version = builder.python_version(params["python"])
    key = packages_key(source, version, params["gunicorn_requirement"])
    origin = reusable(params["releases_dir"], path, key)
    if origin:
        copy_virtualenv(origin, path)
    else:
        builder.build(params["python"], path, source)
    if has_project(source):
        # The copy holds the earlier release's build of the same project version: replace it.
        again = ["--no-deps", "--force-reinstall"] if origin else []
        builder.pip(path, "Installing the app's project", *again, source)
    if not os.path.lexists(os.path.join(path, "bin/gunicorn")):
        builder.pip(path, "Installing Gunicorn", params["gunicorn_requirement"])
    # Last: only a virtualenv with everything in it is ever offered for reuse.
    with open(os.path.join(path, KEY_FILE), "w", encoding="utf-8") as handle:
        json.dump({"key": key, "python": version}, handle)
    return key, origin or ""


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "source": {"type": "path", "required": True},
            "python": {"type": "path", "default": "/usr/bin/python3"},
            "gunicorn_requirement": {"type": "str", "default": "gunicorn"},
            "releases_dir": {"type": "path", "default": ""},
        },
        supports_check_mode=False,
    )
    try:
        key, reused_from = make(Builder(module), module.params)
    except Failed as failed:
        module.fail_json(msg=str(failed))
    except OSError as error:
        module.fail_json(msg=f"{json.dumps(error.filename)}: {error.strerror}.")
    module.exit_json(changed=True, key=key, reused_from=reused_from)


if __name__ == "__main__":
    main()
