"""Runs what a role's module asks of the controller inside Ansible's own process.

A module run on the controller still costs a process and a round trip through a connection. The
role's modules that only check their arguments (flask_gunicorn_inputs), or only work on the
controller (flask_gunicorn_pack_source; flask_gunicorn_lock's owner and alive states), say so with
a function controller_result(params): this plugin validates the task's arguments against the
module's ARGUMENT_SPEC, calls it here and returns its result; when it returns None, the module runs
on the host as usual. One file serves each such module: the others are links to it, named after
their module."""

from __future__ import annotations

import importlib.util
import os

from ansible.plugins.action import ActionBase

MODULES = os.path.join(os.path.dirname(os.path.realpath(__file__)), os.pardir, "modules")


def load_module(name):
    """The module's file next door (plugins/modules), imported as Python code."""
    spec = importlib.util.spec_from_file_location(
        f"_flask_gunicorn_controller_{name}", os.path.join(MODULES, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        # The short name whether the task used it or the collection's full name.
        name = self._task.action.rpartition(".")[2]
        module = load_module(name)
        _, params = self.validate_argument_spec(argument_spec=module.ARGUMENT_SPEC)
        answer = module.controller_result(params)
        if answer is None:
            answer = self._execute_module(
                module_name=self._task.action, module_args=self._task.args, task_vars=task_vars
            )
        result.update(answer)
        return result
