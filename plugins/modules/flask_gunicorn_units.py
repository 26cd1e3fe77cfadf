#!/usr/bin/python
"""Plan, read and drive an app instance's process and scheduled-job units."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_units
short_description: The app's long-running processes and scheduled jobs as systemd units
description:
  - Every unit file the flask_gunicorn role writes for an instance's processes
    (C(<name>-<process>@.service), one instance per copy) and scheduled jobs
    (C(<name>-timer-<job>.service) and C(.timer)) carries the line
    C(X-FlaskGunicornInstance=<name>) in its C([Unit]) section (systemd ignores C(X-) keys). That
    line, not the file name alone, tells the instance's units from another instance's whose name
    shares the prefix.
  - O(state=plan) checks O(processes) and O(timers) as the user gave them, fails naming the
    variable and the value, and returns them with defaults filled in, the unit names and the
    C(ExecStart) line of each. A calendar is checked with C(systemd-analyze calendar) on the host.
    Reads only.
  - O(state=read) returns the same names from the units on the host (for rollback, which has no
    input of its own), that is the unit files, the enabled instances of the process templates,
    the timers and which of them are enabled. Reads only.
  - O(state=pause) stops the instance's timers in O(timer_units) that run, so that no job starts
    while a release goes live; it returns those it stopped, to start again afterwards.
  - O(state=apply) brings the units to what O(process_instances), O(timers_active) and
    O(unit_files) say, and removes every unit of the instance they do not name, stopped and
    disabled first. Before it stops or restarts anything that could cut a scheduled job short, it
    waits for the running job, up to the job's own C(TimeoutStartSec). With O(restart), the
    process instances restart (the new release); otherwise only stopped ones start.
  - Check mode changes nothing and reports what would change.
options:
  name:
    description: The instance name (C(flask_gunicorn_app_name)).
    type: str
    required: true
  state:
    description: plan, read, pause or apply.
    type: str
    choices: [plan, read, pause, apply]
    default: read
  unit_dir:
    description: The directory of the unit files.
    type: path
    default: /etc/systemd/system
  processes:
    description: C(flask_gunicorn_processes) as given (O(state=plan)).
    type: raw
  timers:
    description: C(flask_gunicorn_timers) as given (O(state=plan)).
    type: raw
  unit_files:
    description: The unit file names the instance keeps (O(state=apply)); the instance's others go.
    type: list
    elements: str
  process_instances:
    description: The process instances that run and start at boot (O(state=apply)).
    type: list
    elements: str
    default: []
  timer_units:
    description: The instance's timers (O(state=pause), O(state=apply)).
    type: list
    elements: str
    default: []
  timers_active:
    description:
      - The timers that run and start at boot on this host; the others are stopped and disabled.
    type: list
    elements: str
    default: []
  restart:
    description: Restart the running process instances and timers (a release went live).
    type: bool
    default: false
  timers_host:
    description:
      - The inventory host that runs the timers (O(state=plan)); with O(timers), it must be one of
        O(inventory_hosts).
    type: str
  inventory_hosts:
    description: The inventory's hosts (O(state=plan)), to check O(timers_host) against.
    type: list
    elements: str
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Check the processes and timers
  flask_gunicorn_units:
    name: hello
    state: plan
    processes: [{name: worker, command: flask --app hello worker, count: 2}]
    timers: [{name: prune, command: flask --app hello prune, on_calendar: hourly}]
  register: units

- name: Run them, after the web service passed its health check
  flask_gunicorn_units:
    name: hello
    state: apply
    unit_files: "{{ units.unit_files }}"
    process_instances: "{{ units.process_instances }}"
    timer_units: "{{ units.timer_units }}"
    timers_active: "{{ units.timer_units }}"
    restart: true
"""

RETURN = r"""
processes:
  description: The processes with defaults filled in and C(template), C(instances), C(exec_start).
  type: list
  elements: dict
  returned: when state is plan
timers:
  description: The timers with defaults filled in and C(service), C(timer), C(exec_start).
  type: list
  elements: dict
  returned: when state is plan
unit_files:
  description: The unit file names (planned, or found on the host).
  type: list
  elements: str
  returned: when state is plan or read
process_instances:
  description: The process instances (planned, or enabled on the host).
  type: list
  elements: str
  returned: when state is plan or read
timer_units:
  description: The timers (planned, or found on the host).
  type: list
  elements: str
  returned: when state is plan or read
job_units:
  description: The services the timers start.
  type: list
  elements: str
  returned: when state is plan or read
enabled_timers:
  description: The timers enabled on the host.
  type: list
  elements: str
  returned: when state is read
paused:
  description: The timers stopped (pause).
  type: list
  elements: str
  returned: when state is pause
actions:
  description: What was done (or would be, in check mode), as "verb unit" strings, in order.
  type: list
  elements: str
  returned: when state is apply
"""

import json
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule

MARKER = "X-FlaskGunicornInstance"
NAME = re.compile(r"\A[a-z][a-z0-9-]*\Z")
SIGNAL = re.compile(r"\A(SIG)?[A-Z][A-Z0-9]*\Z")
PROCESS_DEFAULTS = {"stop_signal": "SIGTERM", "stop_timeout": 30, "count": 1}
TIMER_DEFAULTS = {"timeout": 300}
MAX_COUNT = 64


class Refused(Exception):
    """Input the module does not act on; nothing changed."""


def _quote(value):
    return json.dumps(value)


def exec_start(command):
    """The ExecStart line that runs command with /bin/sh, which execs it.

    The command becomes the main process, so the stop signal reaches it and not a shell. systemd
    reads "%" as a specifier and "$" as its own variables: both are doubled, so the shell sees
    the command as written (and expands $VARIABLES from the app's environment itself)."""
    text = "exec " + command
    for old, new in (("\\", "\\\\"), ('"', '\\"'), ("%", "%%"), ("$", "$$")):
        text = text.replace(old, new)
    return f'/bin/sh -c "{text}"'


def _int(value, variable, index, key, minimum):
    if isinstance(value, bool) or not re.fullmatch(r"[0-9]+", str(value).strip()):
        raise Refused(
            f"{variable}[{index}].{key} must be a whole number of {minimum} or more;"
            f" got {_quote(value)}."
        )
    number = int(str(value).strip())
    if number < minimum:
        raise Refused(f"{variable}[{index}].{key} must be {minimum} or more; got {_quote(value)}.")
    return number


def _entries(given, variable, required, optional):
    """The list's entries as dicts with only known keys, their names checked and unique."""
    if given is None or given == "":
        return []
    if not isinstance(given, list):
        raise Refused(f"{variable} must be a list of mappings; got {_quote(given)}.")
    seen = set()
    entries = []
    for index, entry in enumerate(given):
        if not isinstance(entry, dict):
            raise Refused(f"{variable}[{index}] must be a mapping; got {_quote(entry)}.")
        unknown = sorted(set(entry) - set(required) - set(optional))
        if unknown:
            raise Refused(
                f"{variable}[{index}] has unknown keys {_quote(unknown)}; it takes"
                f" {_quote(sorted(set(required) | set(optional)))}."
            )
        missing = [key for key in required if entry.get(key) in (None, "")]
        if missing:
            raise Refused(f"{variable}[{index}] needs {_quote(missing)}; got {_quote(entry)}.")
        name = entry["name"]
        if not isinstance(name, str) or not NAME.match(name) or len(name) > 64:
            raise Refused(
                f"{variable}[{index}].name must start with a lowercase letter and hold only"
                f" lowercase letters, digits and '-' (at most 64); got {_quote(name)}."
            )
        if name in seen:
            raise Refused(f"{variable}: the name {_quote(name)} is given twice.")
        seen.add(name)
        command = entry["command"]
        if not isinstance(command, str) or not command.strip() or re.search(r"[\n\r\x00]", command):
            raise Refused(
                f"{variable}[{index}].command must be a command line of one line, not empty;"
                f" got {_quote(command)}."
            )
        entries.append(dict(entry))
    return entries


def plan_processes(name, given):
    processes = []
    variable = "flask_gunicorn_processes"
    for index, entry in enumerate(
        _entries(given, variable, ["name", "command"], list(PROCESS_DEFAULTS))
    ):
        process = {**PROCESS_DEFAULTS, **{k: v for k, v in entry.items() if v is not None}}
        signal = str(process["stop_signal"]).strip().upper()
        if not SIGNAL.match(signal):
            raise Refused(
                f"{variable}[{index}].stop_signal must be a signal name such as SIGTERM or"
                f" SIGINT; got {_quote(entry.get('stop_signal'))}."
            )
        process["stop_signal"] = signal if signal.startswith("SIG") else "SIG" + signal
        process["stop_timeout"] = _int(process["stop_timeout"], variable, index, "stop_timeout", 1)
        process["count"] = _int(process["count"], variable, index, "count", 1)
        if process["count"] > MAX_COUNT:
            raise Refused(
                f"{variable}[{index}].count must be at most {MAX_COUNT};"
                f" got {_quote(entry['count'])}."
            )
        process["template"] = f"{name}-{process['name']}@.service"
        process["instances"] = [
            f"{name}-{process['name']}@{number}.service"
            for number in range(1, process["count"] + 1)
        ]
        process["exec_start"] = exec_start(process["command"])
        processes.append(process)
    return processes


def plan_timers(name, given, check_calendar):
    timers = []
    variable = "flask_gunicorn_timers"
    for index, entry in enumerate(
        _entries(given, variable, ["name", "command", "on_calendar"], list(TIMER_DEFAULTS))
    ):
        timer = {**TIMER_DEFAULTS, **{k: v for k, v in entry.items() if v is not None}}
        calendar = timer["on_calendar"]
        if not isinstance(calendar, str) or re.search(r"[\n\r\x00%]", calendar):
            raise Refused(
                f"{variable}[{index}].on_calendar must be a systemd calendar expression of one"
                f" line; got {_quote(calendar)}."
            )
        problem = check_calendar(calendar)
        if problem:
            raise Refused(
                f"{variable}[{index}].on_calendar is not a calendar expression systemd accepts"
                f" (systemd-analyze calendar: {problem}); got {_quote(calendar)}."
            )
        timer["timeout"] = _int(timer["timeout"], variable, index, "timeout", 1)
        timer["service"] = f"{name}-timer-{timer['name']}.service"
        timer["timer"] = f"{name}-timer-{timer['name']}.timer"
        timer["exec_start"] = exec_start(timer["command"])
        timers.append(timer)
    return timers


def check_timers_host(timers, timers_host, inventory_hosts):
    """Refuse a timers host that is not in the inventory: no host would run the jobs."""
    if timers and timers_host is not None and timers_host not in (inventory_hosts or []):
        raise Refused(
            "flask_gunicorn_timers_host must name a host of the inventory, which runs the"
            " scheduled jobs of flask_gunicorn_timers (no other host does);"
            f" got {_quote(timers_host)}."
        )


def plan(name, processes, timers, check_calendar, timers_host=None, inventory_hosts=None):
    processes = plan_processes(name, processes)
    timers = plan_timers(name, timers, check_calendar)
    check_timers_host(timers, timers_host, inventory_hosts)
    return {
        "processes": processes,
        "timers": timers,
        "unit_files": [p["template"] for p in processes]
        + [unit for t in timers for unit in (t["service"], t["timer"])],
        "process_instances": [unit for p in processes for unit in p["instances"]],
        "timer_units": [t["timer"] for t in timers],
        "job_units": [t["service"] for t in timers],
    }


def _marked(path, name):
    """Whether the unit file carries the instance's marker line (a link is never followed)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    with os.fdopen(descriptor, encoding="utf-8", errors="replace") as handle:
        return any(line.strip() == f"{MARKER}={name}" for line in handle)


def instance_files(unit_dir, name):
    """The unit files in unit_dir that belong to the instance, sorted."""
    try:
        names = os.listdir(unit_dir)
    except FileNotFoundError:
        return []
    return sorted(
        entry
        for entry in names
        if entry.startswith(name + "-")
        and entry.endswith((".service", ".timer"))
        and os.path.isfile(os.path.join(unit_dir, entry))
        and not os.path.islink(os.path.join(unit_dir, entry))
        and _marked(os.path.join(unit_dir, entry), name)
    )


def enabled_instances(unit_dir, templates):
    """The instances of the templates that a *.wants or *.requires directory links to."""
    prefixes = tuple(template[: -len("@.service")] + "@" for template in templates)
    found = set()
    if not prefixes:
        return []
    try:
        directories = os.listdir(unit_dir)
    except FileNotFoundError:
        return []
    for directory in directories:
        if not directory.endswith((".wants", ".requires")):
            continue
        path = os.path.join(unit_dir, directory)
        if os.path.islink(path) or not os.path.isdir(path):
            continue
        for entry in os.listdir(path):
            if entry.startswith(prefixes) and entry.endswith(".service"):
                found.add(entry)
    return sorted(found, key=_instance_order)


def _instance_order(unit):
    prefix, _, rest = unit.partition("@")
    number = rest[: -len(".service")]
    return (prefix, int(number) if number.isdigit() else 0, number)


def timeout_of(unit_dir, unit, default=300):
    """The TimeoutStartSec the role wrote into a job's unit file, in seconds."""
    try:
        with open(os.path.join(unit_dir, unit), encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = re.fullmatch(r"\s*TimeoutStartSec=([0-9]+)\s*", line)
                if match:
                    return int(match.group(1))
    except OSError:
        pass
    return default


class Systemd:
    """systemctl, run by the module (tests give a fake)."""

    def __init__(self, module):
        self.module = module

    def run(self, *args, check=True):
        rc, out, err = self.module.run_command(["systemctl", *args])
        if check and rc != 0:
            raise Refused(f"systemctl {' '.join(args)} failed ({rc}): {err.strip() or out.strip()}")
        return rc, out

    def active_state(self, unit):
        return self.run("show", "--property=ActiveState", "--value", unit)[1].strip()

    def is_enabled(self, unit):
        return self.run("is-enabled", unit, check=False)[1].strip() in (
            "enabled",
            "enabled-runtime",
        )

    def loaded_instances(self, templates):
        """Instances of the templates systemd has loaded (running, failed or merely known)."""
        if not templates:
            return []
        patterns = [template.replace("@.service", "@*.service") for template in templates]
        _, out = self.run(
            "list-units", "--all", "--plain", "--no-legend", "--full", *patterns, check=False
        )
        return [line.split()[0] for line in out.splitlines() if line.split()]

    def calendar(self, expression):
        rc, out, err = self.module.run_command(["systemd-analyze", "calendar", expression])
        return "" if rc == 0 else (err.strip() or out.strip() or f"exit status {rc}")


def read(unit_dir, name, systemd):
    files = instance_files(unit_dir, name)
    templates = [unit for unit in files if unit.endswith("@.service")]
    timers = [unit for unit in files if unit.endswith(".timer")]
    return {
        "unit_files": files,
        "process_instances": enabled_instances(unit_dir, templates),
        "timer_units": timers,
        "job_units": [unit[: -len(".timer")] + ".service" for unit in timers],
        "enabled_timers": [unit for unit in timers if systemd.is_enabled(unit)],
    }


def wait_for_job(systemd, unit, timeout, sleep=time.sleep):
    """Wait while the job runs, up to its timeout (and a little: systemd ends it then); the
    seconds waited."""
    waited = 0
    while systemd.active_state(unit) in ("activating", "deactivating") and waited < timeout + 5:
        sleep(1)
        waited += 1
    return waited


def apply(unit_dir, name, params, systemd, check_mode, sleep=time.sleep):
    """Bring the instance's units to what params say; the actions, in order."""
    actions = []
    wanted_files = set(params["unit_files"])
    found = instance_files(unit_dir, name)
    unwanted_files = [unit for unit in found if unit not in wanted_files]
    templates = sorted({unit for unit in found + list(wanted_files) if unit.endswith("@.service")})
    wanted_instances = list(dict.fromkeys(params["process_instances"]))
    known = set(enabled_instances(unit_dir, templates)) | set(systemd.loaded_instances(templates))
    unwanted_instances = sorted(
        (unit for unit in known if unit not in wanted_instances), key=_instance_order
    )
    unwanted_timers = [unit for unit in unwanted_files if unit.endswith(".timer")]
    unwanted_jobs = [
        unit
        for unit in unwanted_files
        if unit.endswith(".service") and not unit.endswith("@.service")
    ]

    def do(*args):
        actions.append(" ".join(args))
        if not check_mode:
            systemd.run(*args)

    # A job is never cut short: its timer stops first, then the job gets its own timeout.
    for unit in unwanted_timers:
        if systemd.active_state(unit) not in ("inactive", "failed", ""):
            do("stop", unit)
    for unit in unwanted_jobs:
        if systemd.active_state(unit) in ("activating", "deactivating"):
            actions.append(f"wait {unit}")
            if not check_mode:
                wait_for_job(systemd, unit, timeout_of(unit_dir, unit), sleep)
    for unit in unwanted_instances + unwanted_timers + unwanted_jobs:
        if systemd.active_state(unit) not in ("inactive", "failed", ""):
            do("stop", unit)
        if systemd.is_enabled(unit):
            do("disable", unit)
    for unit in unwanted_files:
        actions.append(f"remove {unit}")
        if not check_mode:
            os.unlink(os.path.join(unit_dir, unit))
    if unwanted_files and not check_mode:
        systemd.run("daemon-reload")
    for unit in unwanted_instances + unwanted_timers + unwanted_jobs:
        # A failed unit would stay listed after its file went.
        if not check_mode:
            systemd.run("reset-failed", unit, check=False)

    to_start = []
    to_restart = []
    for unit in wanted_instances:
        state = systemd.active_state(unit)
        if state in ("active", "activating", "reloading") and params["restart"]:
            to_restart.append(unit)
        elif state not in ("active", "activating", "reloading"):
            to_start.append(unit)
        if not systemd.is_enabled(unit):
            do("enable", unit)
    if to_restart:
        # All at once: systemd stops them side by side, each finishing its job within its
        # stop timeout, then starts them on the release current names.
        do("restart", *to_restart)
    if to_start:
        do("start", *to_start)

    active = list(dict.fromkeys(params["timers_active"]))
    for unit in params["timer_units"]:
        job = unit[: -len(".timer")] + ".service"
        running = systemd.active_state(unit) in ("active", "activating", "reloading")
        if unit in active:
            if not systemd.is_enabled(unit):
                do("enable", unit)
            if params["restart"] and systemd.active_state(job) in ("activating", "deactivating"):
                # The job that runs finishes on its release before its timer starts it anew.
                actions.append(f"wait {job}")
                if not check_mode:
                    wait_for_job(systemd, job, timeout_of(unit_dir, job), sleep)
            if not running:
                do("start", unit)
            elif params["restart"]:
                do("restart", unit)
        else:
            if running:
                do("stop", unit)
            if systemd.is_enabled(unit):
                do("disable", unit)
    return actions


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {
                "type": "str",
                "default": "read",
                "choices": ["plan", "read", "pause", "apply"],
            },
            "unit_dir": {"type": "path", "default": "/etc/systemd/system"},
            "processes": {"type": "raw"},
            "timers": {"type": "raw"},
            "unit_files": {"type": "list", "elements": "str"},
            "process_instances": {"type": "list", "elements": "str", "default": []},
            "timer_units": {"type": "list", "elements": "str", "default": []},
            "timers_active": {"type": "list", "elements": "str", "default": []},
            "restart": {"type": "bool", "default": False},
            "timers_host": {"type": "str"},
            "inventory_hosts": {"type": "list", "elements": "str"},
        },
        required_if=[("state", "apply", ("unit_files",))],
        supports_check_mode=True,
    )
    p = module.params
    systemd = Systemd(module)
    try:
        if p["state"] == "plan":
            module.exit_json(
                changed=False,
                **plan(
                    p["name"],
                    p["processes"],
                    p["timers"],
                    systemd.calendar,
                    p["timers_host"],
                    p["inventory_hosts"],
                ),
            )
        if p["state"] == "read":
            module.exit_json(changed=False, **read(p["unit_dir"], p["name"], systemd))
        if p["state"] == "pause":
            paused = [
                unit
                for unit in p["timer_units"]
                if systemd.active_state(unit) in ("active", "activating", "reloading")
            ]
            if paused and not module.check_mode:
                systemd.run("stop", *paused)
            module.exit_json(changed=bool(paused), paused=paused)
        actions = apply(p["unit_dir"], p["name"], p, systemd, module.check_mode)
        module.exit_json(changed=bool(actions), actions=actions)
    except Refused as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
