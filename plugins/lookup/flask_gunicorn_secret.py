"""Lookup flask_gunicorn_secret: a secret shared by every host of an app, kept on the controller."""

from __future__ import annotations

DOCUMENTATION = r"""
name: flask_gunicorn_secret
short_description: A secret shared by every host of an app, made once on the controller
description:
  - Returns the secret named by each term for the app O(app) - the value given in O(given) when
    there is one, else the content of the file C(<directory>/<app>/<name>) on the controller, which
    is made the first time with 32 random bytes as 64 hexadecimal digits.
  - Like ansible.builtin.password, a file that exists is read and never rewritten, so every host of
    every run gets the same value. The file is written whole under a temporary name and linked into
    place, so calls made at once (one per host, in forked workers) all return the value of the one
    that linked first, and an interrupted run never leaves an empty secret.
  - The directories are made mode 0700 and the files 0600 whatever the umask; looser ones are
    tightened. The value is never logged by the plugin; tasks that pass it on need no_log.
options:
  _terms:
    description: Names of the secrets (letters, digits, C(.), C(_), C(-); not starting with C(.)).
    required: true
  app:
    description: The app the secrets belong to (the same characters as a name).
    type: str
    required: true
  directory:
    description: The controller directory of the secrets, e.g. C({{ inventory_dir }}/secrets).
    type: path
    required: true
  given:
    description: Values given by the user, by app then name (e.g. from Ansible Vault); they win.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The app's SECRET_KEY, the same on every web host
  ansible.builtin.set_fact:
    secret_key: >-
      {{ lookup('flask_gunicorn_secret', 'secret_key', app='hello',
                directory=inventory_dir ~ '/secrets', given=flask_gunicorn_secrets) }}
  no_log: true
"""

RETURN = r"""
_raw:
  description: One value for each term.
  type: list
  elements: str
"""

import contextlib
import os
import re
import secrets
import stat

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


class SecretError(ValueError):
    """What is asked cannot be answered; the message names what is wrong, never a value."""


def new_secret():
    return secrets.token_hex(32)


def private_directory(path):
    """Make path (and its parents) when missing; path itself ends up mode 0700."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    status = os.lstat(path)
    if not stat.S_ISDIR(status.st_mode):
        raise SecretError(f"{path} is not a directory")
    if stat.S_IMODE(status.st_mode) != 0o700:
        os.chmod(path, 0o700)


def read_secret(path):
    """The secret in the file at path, mode 0600, or None when there is none."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SecretError(f"{path} cannot be read: {error.strerror}") from None
    with os.fdopen(descriptor, "r", encoding="utf-8") as secret_file:
        if stat.S_IMODE(os.fstat(descriptor).st_mode) != 0o600:
            os.fchmod(descriptor, 0o600)
        value = secret_file.read().strip()
    if not value:
        raise SecretError(f"{path} is empty: delete it to make a new secret, or write one in it")
    return value


def create_secret(path, value):
    """Write value at path unless a file is there already; the value at path afterwards."""
    temporary = f"{path}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as secret_file:
            os.fchmod(descriptor, 0o600)
            secret_file.write(value + "\n")
            secret_file.flush()
            os.fsync(descriptor)
        # link() never replaces: the first call to link wins, the others read its value.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
    return read_secret(path)


def check_name(what, name):
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise SecretError(
            f"the {what} {name!r} must hold only letters, digits, '.', '_' and '-', "
            "and not start with '.': it names a file"
        )


def shared_secret(directory, app, name, given=None):
    """The secret name of app: the given value, else the file's, else a new one kept in the file."""
    check_name("app", app)
    check_name("secret name", name)
    value = ((given or {}).get(app) or {}).get(name)
    if value not in (None, ""):
        return str(value)
    if not directory:
        raise SecretError("no secrets directory given")
    root = os.path.abspath(directory)
    private_directory(root)
    app_directory = os.path.join(root, app)
    private_directory(app_directory)
    path = os.path.join(app_directory, name)
    value = read_secret(path)
    return value if value is not None else create_secret(path, new_secret())


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        app, directory, given = (self.get_option(key) for key in ("app", "directory", "given"))
        if given is not None and not isinstance(given, dict):
            raise AnsibleError("flask_gunicorn_secret: given must be a mapping of apps to secrets")
        try:
            return [shared_secret(directory, app, term, given) for term in terms]
        except (SecretError, OSError) as error:
            # The message names the file or the name, never a value.
            raise AnsibleError(f"flask_gunicorn_secret: {error}") from None
