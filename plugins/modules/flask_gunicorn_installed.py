#!/usr/bin/python
"""What check mode can drive on a host: python3-apt, and what an earlier run installed."""

DOCUMENTATION = r"""
module: flask_gunicorn_installed
short_description: Tell a check run what it can drive on a host that may be bare
description:
  - The apt module cannot even look at packages without python3-apt, and installs it first when
    it is missing; in check mode it cannot. This module says whether python3-apt is installed
    (RV(apt_ready)) and, when it is not, reports the packages O(packages) as what the run would
    install, as a change.
  - It also says which of O(paths) exist (RV(present)), so that tasks driving services an earlier
    run installed (nginx, the app's units) skip themselves on a bare host instead of failing.
  - Both roles run it in check mode only; it changes nothing.
options:
  packages:
    description: The packages the role installs, named in the report.
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
- name: Look for python3-apt and what an earlier run installed
  flask_gunicorn_installed:
    packages: [nginx]
    paths: [/usr/sbin/nginx]
  register: installed
  when: ansible_check_mode
"""

RETURN = r"""
apt_ready:
  description: python3-apt is installed, so the apt module can run in check mode.
  type: bool
  returned: always
present:
  description: For each of O(paths), whether it exists.
  type: dict
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec={
            "packages": {"type": "list", "elements": "str", "default": []},
            "paths": {"type": "list", "elements": "path", "default": []},
        },
        supports_check_mode=True,
    )
    rc, status, _ = module.run_command(
        ["dpkg-query", "--show", "--showformat=${db:Status-Status}", "python3-apt"]
    )
    apt_ready = rc == 0 and status.strip() == "installed"
    result = {
        "changed": module.check_mode and not apt_ready,
        "apt_ready": apt_ready,
        "present": {path: os.path.lexists(path) for path in module.params["paths"]},
    }
    if not apt_ready:
        packages = ", ".join(module.params["packages"])
        result["msg"] = f"Would install {packages} (python3-apt is not installed yet)"
    module.exit_json(**result)


if __name__ == "__main__":
    main()
