"""Unit tests of flask_gunicorn_units: the plan of processes and timers, and what apply does."""

import importlib.util
import os
from pathlib import Path

import pytest

MODULES = Path(__file__).resolve().parents[1] / "plugins/modules"
spec = importlib.util.spec_from_file_location("units", MODULES / "flask_gunicorn_units.py")
units = importlib.util.module_from_spec(spec)
spec.loader.exec_module(units)


def no_calendar_problem(expression):
    return ""


def test_plan_fills_defaults_and_names_the_units():
    planned = units.plan(
        "shop",
        [{"name": "worker", "command": "rq worker", "count": 2}],
        [{"name": "prune", "command": "flask prune", "on_calendar": "hourly"}],
        no_calendar_problem,
    )
    process = planned["processes"][0]
    assert process["stop_signal"] == "SIGTERM"
    assert process["stop_timeout"] == 30
    assert planned["process_instances"] == ["shop-worker@1.service", "shop-worker@2.service"]
    assert planned["unit_files"] == [
        "shop-worker@.service",
        "shop-timer-prune.service",
        "shop-timer-prune.timer",
    ]
    assert planned["timers"][0]["timeout"] == 300
    assert planned["job_units"] == ["shop-timer-prune.service"]


def test_a_timers_host_outside_the_inventory_is_refused_only_with_timers():
    timers = [{"name": "prune", "command": "flask prune", "on_calendar": "hourly"}]
    with pytest.raises(units.Refused, match="flask_gunicorn_timers_host"):
        units.plan("shop", [], timers, no_calendar_problem, "web9", ["web1", "web2"])
    assert units.plan("shop", [], timers, no_calendar_problem, "web2", ["web1", "web2"])["timers"]
    assert units.plan("shop", [], [], no_calendar_problem, "web9", ["web1"])["timers"] == []


def test_a_signal_without_sig_gets_it():
    planned = units.plan_processes("shop", [{"name": "w", "command": "x", "stop_signal": "int"}])
    assert planned[0]["stop_signal"] == "SIGINT"


@pytest.mark.parametrize(
    ("processes", "message"),
    [
        ({"name": "w"}, "must be a list"),
        ([{"name": "Worker", "command": "x"}], "flask_gunicorn_processes[0].name"),
        ([{"name": "w", "command": "x"}, {"name": "w", "command": "y"}], "given twice"),
        ([{"name": "w", "command": " "}], "not empty"),
        ([{"name": "w"}], "needs"),
        ([{"name": "w", "command": "a\nb"}], "flask_gunicorn_processes[0].command"),
        ([{"name": "w", "command": "x", "count": 0}], "count must be 1 or more"),
        ([{"name": "w", "command": "x", "count": "two"}], '"two"'),
        ([{"name": "w", "command": "x", "stop_signal": "TERM;"}], "stop_signal"),
        ([{"name": "w", "command": "x", "colour": 1}], "unknown keys"),
    ],
)
def test_bad_processes_are_refused_naming_the_variable(processes, message):
    with pytest.raises(units.Refused, match=None) as refused:
        units.plan_processes("shop", processes)
    assert message in str(refused.value)


def test_a_calendar_systemd_refuses_is_refused_with_its_words():
    with pytest.raises(units.Refused) as refused:
        units.plan_timers(
            "shop",
            [{"name": "j", "command": "x", "on_calendar": "every tuesday"}],
            lambda expression: "Failed to parse calendar specification",
        )
    assert "flask_gunicorn_timers[0].on_calendar" in str(refused.value)
    assert '"every tuesday"' in str(refused.value)


def test_exec_start_keeps_the_command_as_written_for_the_shell():
    line = units.exec_start('echo "100%" $REDIS_URL \\n')
    assert line == '/bin/sh -c "exec echo \\"100%%\\" $$REDIS_URL \\\\n"'


def write_unit(directory, name, owner):
    (directory / name).write_text(f"[Unit]\n{units.MARKER}={owner}\n")


class FakeSystemd:
    def __init__(self, states=None, enabled=()):
        self.states = dict(states or {})
        self.enabled = set(enabled)
        self.calls = []

    def run(self, *args, check=True):
        self.calls.append(args)
        verb, *names = args
        for name in names:
            if verb in ("start", "restart"):
                self.states[name] = "active"
            elif verb == "stop":
                self.states[name] = "inactive"
            elif verb == "enable":
                self.enabled.add(name)
            elif verb == "disable":
                self.enabled.discard(name)
        return 0, ""

    def active_state(self, unit):
        return self.states.get(unit, "inactive")

    def is_enabled(self, unit):
        return unit in self.enabled

    def loaded_instances(self, templates):
        prefixes = tuple(t.replace("@.service", "@") for t in templates)
        return [unit for unit in self.states if unit.startswith(prefixes)]


def params(**given):
    base = {
        "unit_files": [],
        "process_instances": [],
        "timer_units": [],
        "timers_active": [],
        "restart": False,
    }
    return {**base, **given}


def test_only_the_instances_own_units_are_found(tmp_path):
    write_unit(tmp_path, "shop-worker@.service", "shop")
    write_unit(tmp_path, "shop-x-worker@.service", "shop-x")
    os.symlink("shop-worker@.service", tmp_path / "shop-link@.service")
    assert units.instance_files(str(tmp_path), "shop") == ["shop-worker@.service"]


def test_the_unit_states_module_finds_the_same_units_as_this_one(tmp_path):
    states_spec = importlib.util.spec_from_file_location(
        "unit_states", MODULES / "flask_gunicorn_unit_states.py"
    )
    unit_states = importlib.util.module_from_spec(states_spec)
    states_spec.loader.exec_module(unit_states)
    assert unit_states.MARKER == units.MARKER
    write_unit(tmp_path, "shop-worker@.service", "shop")
    write_unit(tmp_path, "shop-timer-prune.timer", "shop")
    write_unit(tmp_path, "shop-x-worker@.service", "shop-x")
    (tmp_path / "shop-other.service").write_text("[Unit]\n")
    os.symlink("shop-worker@.service", tmp_path / "shop-link@.service")
    found = unit_states.instance_unit_files(str(tmp_path), "shop")
    assert found == units.instance_files(str(tmp_path), "shop")
    assert found == ["shop-timer-prune.timer", "shop-worker@.service"]
    assert unit_states.instance_unit_files(str(tmp_path), None) == []
    assert unit_states.instance_unit_files(str(tmp_path / "missing"), "shop") == []


def test_apply_starts_enables_and_then_changes_nothing(tmp_path):
    write_unit(tmp_path, "shop-worker@.service", "shop")
    systemd = FakeSystemd()
    wanted = params(
        unit_files=["shop-worker@.service"],
        process_instances=["shop-worker@1.service", "shop-worker@2.service"],
    )
    actions = units.apply(str(tmp_path), "shop", wanted, systemd, False)
    assert "start shop-worker@1.service shop-worker@2.service" in actions
    assert units.apply(str(tmp_path), "shop", wanted, systemd, False) == []


def test_apply_restarts_the_running_instances_when_a_release_went_live(tmp_path):
    write_unit(tmp_path, "shop-worker@.service", "shop")
    instance = "shop-worker@1.service"
    systemd = FakeSystemd({instance: "active"}, {instance})
    wanted = params(unit_files=["shop-worker@.service"], process_instances=[instance], restart=True)
    assert units.apply(str(tmp_path), "shop", wanted, systemd, False) == [f"restart {instance}"]


def test_a_removed_instance_and_a_removed_process_leave_no_unit(tmp_path):
    write_unit(tmp_path, "shop-worker@.service", "shop")
    write_unit(tmp_path, "shop-mailer@.service", "shop")
    write_unit(tmp_path, "shop-other@.service", "shop-other")
    systemd = FakeSystemd(
        {
            "shop-worker@1.service": "active",
            "shop-worker@2.service": "active",
            "shop-mailer@1.service": "active",
        },
        {"shop-worker@1.service", "shop-worker@2.service", "shop-mailer@1.service"},
    )
    wanted = params(
        unit_files=["shop-worker@.service"], process_instances=["shop-worker@1.service"]
    )
    actions = units.apply(str(tmp_path), "shop", wanted, systemd, False)
    assert actions.index("stop shop-mailer@1.service") < actions.index(
        "remove shop-mailer@.service"
    )
    assert "stop shop-worker@2.service" in actions
    assert "disable shop-worker@2.service" in actions
    assert sorted(os.listdir(tmp_path)) == ["shop-other@.service", "shop-worker@.service"]


def test_check_mode_reports_and_changes_nothing(tmp_path):
    write_unit(tmp_path, "shop-mailer@.service", "shop")
    systemd = FakeSystemd({"shop-mailer@1.service": "active"}, {"shop-mailer@1.service"})
    actions = units.apply(str(tmp_path), "shop", params(), systemd, True)
    assert "remove shop-mailer@.service" in actions
    assert systemd.calls == []
    assert os.listdir(tmp_path) == ["shop-mailer@.service"]


def test_a_removed_timer_waits_for_its_running_job_before_it_goes(tmp_path):
    write_unit(tmp_path, "shop-timer-prune.timer", "shop")
    (tmp_path / "shop-timer-prune.service").write_text(
        f"[Unit]\n{units.MARKER}=shop\n[Service]\nTimeoutStartSec=7\n"
    )
    systemd = FakeSystemd(
        {"shop-timer-prune.timer": "active", "shop-timer-prune.service": "activating"},
        {"shop-timer-prune.timer"},
    )
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        if len(slept) == 3:
            systemd.states["shop-timer-prune.service"] = "inactive"

    actions = units.apply(str(tmp_path), "shop", params(), systemd, False, sleep)
    assert actions[:2] == ["stop shop-timer-prune.timer", "wait shop-timer-prune.service"]
    assert len(slept) == 3
    assert os.listdir(tmp_path) == []


def test_timers_run_only_where_they_are_active(tmp_path):
    write_unit(tmp_path, "shop-timer-prune.timer", "shop")
    write_unit(tmp_path, "shop-timer-prune.service", "shop")
    files = ["shop-timer-prune.service", "shop-timer-prune.timer"]
    here = FakeSystemd()
    units.apply(
        str(tmp_path),
        "shop",
        params(
            unit_files=files,
            timer_units=["shop-timer-prune.timer"],
            timers_active=["shop-timer-prune.timer"],
        ),
        here,
        False,
    )
    assert here.states["shop-timer-prune.timer"] == "active"
    elsewhere = FakeSystemd({"shop-timer-prune.timer": "active"}, {"shop-timer-prune.timer"})
    units.apply(
        str(tmp_path),
        "shop",
        params(unit_files=files, timer_units=["shop-timer-prune.timer"]),
        elsewhere,
        False,
    )
    assert elsewhere.states["shop-timer-prune.timer"] == "inactive"
    assert not elsewhere.enabled
