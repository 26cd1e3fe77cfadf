#!/usr/bin/python
"""Whether systemd units run and start at boot, and whether socket files are in place: one task."""

DOCUMENTATION = r"""
module: flask_gunicorn_unit_states
short_description: Read whether units are active and enabled, and whether socket files exist
description:
  - Asks systemd once for the load, active and unit file states of O(units), and looks whether a
    socket file is at each path of O(sockets) (a link there does not count and is not followed).
  - The role reads this once per run instead of starting each unit with a task of its own, just in
    case; each task is a round trip to the host. Changes nothing; supports check mode.
options:
  units:
    description: Unit names, with their suffix (C(nginx.service), C(hello.socket)).
    type: list
    elements: str
    default: []
  sockets:
    description: Paths where a unix socket file is expected.
    type: list
    elements: path
    default: []
  instance:
    description:
      - An instance name; its process and scheduled-job unit files in O(unit_dir) are listed, those
        named C(<instance>-*.service) or C(.timer) that carry the line
        C(X-FlaskGunicornInstance=<instance>), as the flask_gunicorn_units module writes and finds
        them (a link is never followed).
    type: str
  unit_dir:
    description: Where O(instance)'s unit files are.
    type: path
    default: /etc/systemd/system
author: flask_gunicorn.stack contributors
"""

EXAMPLES = r"""
- name: Read the units' states and whether the app's socket file is in place
  flask_gunicorn_unit_states:
    units: [nginx.service, hello.socket, hello.service]
    sockets: [/run/hello.sock]
  register: states

- name: Start nginx and enable it at boot
  ansible.builtin.systemd_service:
    name: nginx
    state: started
    enabled: true
  when: not states.running_at_boot['nginx.service']
"""

RETURN = r"""
units:
  description: >-
    Per unit, its C(LoadState), C(ActiveState), C(UnitFileState) and C(NeedDaemonReload) (C(yes)
    when its files changed since systemd read them), as systemd says.
  type: dict
  returned: always
  sample:
    hello.socket: {LoadState: loaded, ActiveState: active, UnitFileState: enabled}
running_at_boot:
  description: For each unit, whether it is active now and enabled at boot.
  type: dict
  returned: always
need_daemon_reload:
  description: Whether systemd has not read the files of one of the units since they changed.
  type: bool
  returned: always
sockets:
  description: For each path of O(sockets), whether a socket file is there.
  type: dict
  returned: always
instance_unit_files:
  description: >-
    The unit files of O(instance)'s processes and scheduled jobs, sorted; empty without O(instance).
  type: list
  elements: str
  returned: always
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule

# The line every process and job unit of an instance carries (flask_gunicorn_units).
MARKER = "X-FlaskGunicornInstance"
PROPERTIES = ("Id", "LoadState", "ActiveState", "UnitFileState", "NeedDaemonReload")


def parse_show(output, units):
    """systemctl show's blocks (blank-line separated, in the order asked) as a dict per unit."""
    blocks = output.strip("\n").split("\n\n")
    states = {}
    for unit, block in zip(units, blocks):
        values = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[unit] = {key: values.get(key, "") for key in PROPERTIES[1:]}
    for unit in units:
        states.setdefault(unit, {key: "" for key in PROPERTIES[1:]})
    return states


def running_at_boot(state):
    return state["ActiveState"] == "active" and state["UnitFileState"] == "enabled"


def socket_file(path):
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def _marked(path, marker):
    """Whether the unit file holds the marker line (a link is never followed)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(descriptor, encoding="utf-8", errors="replace") as handle:
        return any(line.strip() == marker for line in handle)


def instance_unit_files(unit_dir, name):
    """The instance's process and job unit files, as flask_gunicorn_units finds them."""
    if not name:
        return []
    try:
        entries = os.listdir(unit_dir)
    except FileNotFoundError:
        return []
    return sorted(
        entry
        for entry in entries
        if entry.startswith(name + "-")
        and entry.endswith((".service", ".timer"))
        and _marked(os.path.join(unit_dir, entry), f"{MARKER}={name}")
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "units": {"type": "list", "elements": "str", "default": []},
            "sockets": {"type": "list", "elements": "path", "default": []},
            "instance": {"type": "str"},
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
        },
        supports_check_mode=True,
    )
    units = module.params["units"]
    states = {}
    if units:
        systemctl = module.get_bin_path("systemctl", required=True)
        rc, stdout, stderr = module.run_command(
            [systemctl, "show", "--property=" + ",".join(PROPERTIES), "--", *units]
        )
        if rc != 0:
            module.fail_json(msg=f"systemctl show failed: {stderr.strip()}", rc=rc)
        states = parse_show(stdout, units)
    module.exit_json(
        changed=False,
        units=states,
        running_at_boot={unit: running_at_boot(state) for unit, state in states.items()},
        need_daemon_reload=any(state["NeedDaemonReload"] == "yes" for state in states.values()),
        sockets={path: socket_file(path) for path in module.params["sockets"]},
        instance_unit_files=instance_unit_files(
            module.params["unit_dir"], module.params["instance"]
        ),
    )


if __name__ == "__main__":
    main()
