#!/usr/bin/python
"""Which packages a host lacks, and what check mode can drive there."""

DOCUMENTATION = r"""
module: flask_gunicorn_installed
short_description: Say which packages a host lacks, and what a check run can drive there
description:
  - Reads dpkg's records of O(packages) and python3-apt in one call and returns the packages not
    installed (RV(missing)); the roles run the apt module only when one is, since apt's own look
    at the packages costs several times this module's.
  - The apt module cannot even look at packages without python3-apt, and installs it first when
    it is missing; in check mode it cannot. RV(apt_ready) says whether python3-apt is installed;
    in check mode without it, the missing packages are reported as what the run would install, as
    a change.
  - It also says which of O(paths) exist (RV(present)), so that tasks driving services an earlier
    run installed (nginx, the app's units) skip themselves in check mode on a bare host instead of
    failing.
  - It changes nothing.
options:
  packages:
    description: The packages the role installs.
    type: list
    elements: str
    default: []
  paths:
    description: Paths to look for (a binary, a unit file).
    type: list
    elements: path
    default: []
author: flask_gunicorn.stack contributors
"""

EXAMPLES = r"""
- name: Look for the packages, python3-apt and what an earlier run installed
  flask_gunicorn_installed:
    packages: [nginx]
    paths: [/usr/sbin/nginx]
  register: installed

- name: Install what is missing
  ansible.builtin.apt:
    name: [nginx]
  when: installed.missing | length > 0
"""

RETURN = r"""
missing:
  description: The packages of O(packages) that are not installed, in their order.
  type: list
  elements: str
  returned: always
apt_ready:
  description: python3-apt is installed, so the apt module can run in check mode.
  type: bool
  returned: always
present:
  description: Each path of O(paths), and whether it exists (a link counts, whatever it names).
  type: dict
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule


def not_installed(packages, dpkg_output):
    """The packages dpkg-query did not list as installed ("<name> <status>" lines)."""
    installed = set()
    for line in dpkg_output.splitlines():
        name, _, status = line.partition(" ")
        if status.strip() == "installed":
            # An architecture-qualified name (libc6:amd64) answers for the plain one.
            installed.add(name.split(":")[0])
    return [package for package in packages if package.split(":")[0] not in installed]


def main():
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "paths": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    packages = module.params["packages"]
    # dpkg-query exits 1 when it knows one of the names not at all; it lists the others still.
    show = ["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Status}\n"]
    _, output, _ = module.run_command([*show, "python3-apt", *packages])
    missing_or_apt = not_installed(["python3-apt", *packages], output)
    apt_ready = "python3-apt" not in missing_or_apt
    missing = [package for package in missing_or_apt if package != "python3-apt"]
    result = {
        "changed": module.check_mode and bool(missing) and not apt_ready,
        "missing": missing,
        "apt_ready": apt_ready,
        "present": {path: os.path.lexists(path) for path in module.params["paths"]},
    }
    if result["changed"]:
        result["msg"] = f"Would install {', '.join(missing)} (python3-apt is not installed yet)"
    module.exit_json(**result)


if __name__ == "__main__":
    main()
