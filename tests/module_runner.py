"""Runs one of the role's modules as Ansible does, for the unit tests."""

import json
import subprocess
import sys
from pathlib import Path

MODULES = Path(__file__).resolve().parents[1] / "plugins/modules"


def run_named(name, tmp_path, **args):
    """A module as Ansible runs it: a process of its own, its arguments in a file, its result on
    stdout."""
    arguments = tmp_path / f"{name}-args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    completed = subprocess.run(
        [sys.executable, str(MODULES / f"{name}.py"), str(arguments)],
        capture_output=True,
        text=True,
        check=False,
    )
    arguments.unlink()
    return json.loads(completed.stdout)
