"""Unit tests of the role's modules (plugins/modules), on real files in a temporary directory."""

import grp
import importlib.util
import json
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from module_runner import run_named

MODULES = Path(__file__).resolve().parents[1] / "plugins/modules"


def load(name):
    spec = importlib.util.spec_from_file_location(name, MODULES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


files_module = load("flask_gunicorn_files")
instance = load("flask_gunicorn_instance")
inputs = load("flask_gunicorn_inputs")
health = load("flask_gunicorn_health")
UID, GID = os.getuid(), os.getgid()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def area(tmp_path):
    """An app-writable area (shared/) and a directory outside it that must never change."""
    outside = tmp_path / "outside"
    outside.mkdir(mode=0o700)
    (outside / "file").write_text("untouched")
    return tmp_path / "shared", outside


def test_creates_the_root_and_nested_directories_then_changes_nothing(area):
    root, _ = area
    changed, created = files_module.ensure_app_dirs(
        str(root), ["instance", "uploads/images"], UID, GID, 0o750
    )
    assert changed
    assert created == [str(root), f"{root}/instance", f"{root}/uploads", f"{root}/uploads/images"]
    assert all(mode(path) == 0o750 for path in created)
    assert files_module.ensure_app_dirs(
        str(root), ["instance", "uploads/images"], UID, GID, 0o750
    ) == (
        False,
        [],
    )


def test_sets_the_mode_of_an_existing_directory(area):
    root, _ = area
    (root / "instance").mkdir(parents=True, mode=0o777)
    os.chmod(root / "instance", 0o777)
    changed, created = files_module.ensure_app_dirs(str(root), ["instance"], UID, GID, 0o750)
    assert changed and f"{root}/instance" not in created
    assert mode(root / "instance") == 0o750


@pytest.mark.parametrize("planted", ["instance", "uploads"])
def test_a_planted_link_is_refused_and_its_target_untouched(area, planted):
    root, outside = area
    root.mkdir()
    (root / planted).symlink_to(outside)
    with pytest.raises(files_module.PlantedLinkError, match=f"{root}/{planted} is a symbolic link"):
        files_module.ensure_app_dirs(str(root), ["instance", "uploads/images"], UID, GID, 0o755)
    assert mode(outside) == 0o700
    assert sorted(os.listdir(outside)) == ["file"]


def test_a_planted_link_in_place_of_the_root_is_refused(area):
    root, outside = area
    root.symlink_to(outside)
    with pytest.raises(files_module.PlantedLinkError, match=f"{root} is a symbolic link"):
        files_module.ensure_app_dirs(str(root), [], UID, GID, 0o755)
    assert mode(outside) == 0o700


def test_a_file_in_place_of_a_directory_is_refused(area):
    root, _ = area
    root.mkdir()
    (root / "instance").write_text("")
    with pytest.raises(files_module.PlantedLinkError, match="exists and is not a directory"):
        files_module.ensure_app_dirs(str(root), ["instance"], UID, GID, 0o750)


@pytest.mark.parametrize("path", ["../escape", "a/../../escape", "/absolute", "a/./b"])
def test_paths_that_leave_the_area_are_refused(area, path):
    root, _ = area
    with pytest.raises(files_module.Refused, match="relative path"):
        files_module.ensure_app_dirs(str(root), [path], UID, GID, 0o750)


def test_check_mode_reports_and_creates_nothing(area):
    root, _ = area
    changed, created = files_module.ensure_app_dirs(
        str(root), ["instance"], UID, GID, 0o750, check_mode=True
    )
    assert changed and created == [str(root), f"{root}/instance"]
    assert not root.exists()


def account(home="/srv/news", shell="/usr/sbin/nologin", gecos="", gid=100):
    return SimpleNamespace(pw_dir=home, pw_shell=shell, pw_gecos=gecos, pw_gid=gid)


def lookup(table):
    def get(name):
        if name not in table:
            raise KeyError(name)
        return table[name]

    return get


def test_an_existing_account_the_role_did_not_create_is_refused():
    users = lookup({"news": account(home="/var/spool/news")})
    groups = lookup({"news": SimpleNamespace(gr_gid=100)})
    with pytest.raises(
        instance.Refused, match='flask_gunicorn_app_name: "news" is an existing account'
    ):
        instance.check_account("news", "/srv/news", users, groups)


def test_the_roles_own_account_is_accepted_and_a_new_name_is_free():
    users = lookup({"shop": account(gecos=instance.account_marker("shop"))})
    groups = lookup({"shop": SimpleNamespace(gr_gid=100)})
    assert instance.check_account("shop", "/srv/shop", users, groups) is True
    assert instance.check_account("blog", "/srv/blog", lookup({}), lookup({})) is False


def test_an_account_of_an_earlier_role_version_is_recognised_by_its_home(tmp_path):
    (tmp_path / "releases").mkdir()
    users = lookup({"old": account(home=str(tmp_path))})
    groups = lookup({"old": SimpleNamespace(gr_gid=100)})
    assert instance.check_account("old", str(tmp_path), users, groups) is True


def test_an_existing_group_without_the_account_is_refused():
    with pytest.raises(instance.Refused, match="existing group"):
        instance.check_account(
            "adm", "/srv/adm", lookup({}), lookup({"adm": SimpleNamespace(gr_gid=4)})
        )


@pytest.mark.parametrize(
    "path", ["/etc/", "/etc", "/srv", "/usr/lib/app", "/srv/a/../b", "srv/app", "/srv//app"]
)
def test_system_directories_and_unclear_forms_are_refused(path):
    with pytest.raises(
        instance.Refused, match=re.escape(f"flask_gunicorn_config_dir: {json.dumps(path)}")
    ):
        instance.normalised_dir("flask_gunicorn_config_dir", path)


def paths(tmp_path, **changes):
    given = {
        "name": "shop",
        "base_dir": str(tmp_path / "srv/shop"),
        "config_dir": str(tmp_path / "etc/shop"),
        "socket_path": str(tmp_path / "run/shop.sock"),
        "records": {},
        "previous": {},
        "unit_dir": str(tmp_path),
    }
    given.update(changes)
    return given


def test_free_paths_are_accepted(tmp_path):
    (tmp_path / "run").mkdir(mode=0o755)
    instance.check_paths(**paths(tmp_path))


def test_an_existing_directory_the_role_did_not_make_is_refused(tmp_path):
    (tmp_path / "etc/shop").mkdir(parents=True)
    (tmp_path / "etc/shop/passwd").write_text("")
    with pytest.raises(instance.Refused, match="existing directory that the role did not make"):
        instance.check_paths(**paths(tmp_path))
    (tmp_path / "etc/shop/gunicorn.conf.py").write_text("")
    instance.check_paths(**paths(tmp_path))


def test_another_instances_directories_and_socket_are_refused(tmp_path):
    other = {"blog": {"base_dir": str(tmp_path / "srv"), "socket_path": "/run/blog.sock"}}
    with pytest.raises(instance.Refused, match=r'overlaps .* of the instance "blog"'):
        instance.check_paths(**paths(tmp_path, records=other))
    other = {"blog": {"base_dir": "/srv/blog", "socket_path": str(tmp_path / "run/shop.sock")}}
    with pytest.raises(instance.Refused, match='is the socket of the instance "blog"'):
        instance.check_paths(**paths(tmp_path, records=other))


def test_a_socket_path_that_is_not_free_for_a_socket_is_refused(tmp_path):
    (tmp_path / "run").mkdir(mode=0o755)
    (tmp_path / "run/shop.sock").write_text("")
    with pytest.raises(instance.Refused, match="exists and is not a socket"):
        instance.check_paths(**paths(tmp_path))
    os.unlink(tmp_path / "run/shop.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "run/shop.sock"))
        with pytest.raises(instance.Refused, match="another program listens on"):
            instance.check_paths(**paths(tmp_path))
        (tmp_path / "shop.socket").write_text(f"ListenStream={tmp_path}/run/shop.sock\n")
        instance.check_paths(**paths(tmp_path))


def test_a_socket_where_others_can_write_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    os.chmod(tmp_path / "run", 0o1777)
    with pytest.raises(instance.Refused, match="which users other than root can write"):
        instance.check_paths(**paths(tmp_path))
    with pytest.raises(instance.Refused, match="lies in the instance own directories"):
        instance.check_paths(
            **paths(tmp_path, socket_path=str(tmp_path / "srv/shop/shared/s.sock"))
        )


SETTINGS = {"server_names": ["apps.example.test"], "tls_enabled": False, "http_port": 80}


def test_instances_on_one_server_block_must_agree(tmp_path):
    other = dict(SETTINGS, tls_enabled=True)
    claims = {"apps.example.test": {"blog": other}}
    with pytest.raises(instance.Refused, match=r'"shop" and "blog" .* disagree on tls_enabled'):
        instance.check_site(
            "shop", "apps.example.test", ["apps.example.test"], SETTINGS, {}, claims, True
        )
    record = {"blog": {"site": "apps.example.test", "site_settings": other}}
    with pytest.raises(instance.Refused, match="allow_site_change"):
        instance.check_site(
            "shop", "apps.example.test", ["apps.example.test"], SETTINGS, record, {}, False
        )
    instance.check_site(
        "shop", "apps.example.test", ["apps.example.test"], SETTINGS, record, {}, True
    )
    agreeing = {"blog": {"site": "apps.example.test", "site_settings": SETTINGS}}
    instance.check_site(
        "shop", "apps.example.test", ["apps.example.test"], SETTINGS, agreeing, {}, False
    )


def test_a_server_name_belongs_to_one_server_block():
    record = {
        "blog": {
            "site": "blog.example.test",
            "server_names": ["blog.example.test", "www.example.test"],
        }
    }
    with pytest.raises(instance.Refused, match=r"www\.example\.test already belongs"):
        instance.check_site(
            "shop",
            "shop.example.test",
            ["shop.example.test", "www.example.test"],
            {},
            record,
            {},
            False,
        )


applied = load("flask_gunicorn_applied")


@pytest.fixture
def live(tmp_path):
    """A service's files, its releases and its current link."""
    (tmp_path / "etc").mkdir()
    for name in ("app.service", "gunicorn.conf.py"):
        (tmp_path / "etc" / name).write_text(f"{name} v1\n")
    for release in ("r1", "r2"):
        (tmp_path / "releases" / release).mkdir(parents=True)
    (tmp_path / "current").symlink_to(tmp_path / "releases/r1")
    return tmp_path


def files_of(root):
    return [str(root / "etc/app.service"), str(root / "etc/gunicorn.conf.py")]


def test_nothing_recorded_is_pending(live):
    result = applied.compare(str(live / "applied"), files_of(live), str(live / "releases/r1"))
    assert result["pending"] and not result["recorded"]


def test_a_recorded_state_is_not_pending_until_a_file_or_the_release_differs(live):
    state, files, r1 = str(live / "applied"), files_of(live), str(live / "releases/r1")
    assert applied.record(state, files, r1)
    assert not applied.record(state, files, r1)
    # The copies hold secrets: nothing in the record is readable by anyone but root.
    assert mode(state) == 0o700
    assert {mode(os.path.join(state, name)) for name in os.listdir(state)} == {0o600}
    assert applied.compare(state, files, r1) == {
        "recorded": True,
        "release": r1,
        "differs": [],
        "pending": False,
        "stale": [],
    }
    assert applied.compare(state, files, str(live / "releases/r2"))["pending"]
    (live / "etc/gunicorn.conf.py").write_text("workers = 9\n")
    assert applied.compare(state, files, r1)["differs"] == [str(live / "etc/gunicorn.conf.py")]


def test_a_file_no_longer_given_is_stale_not_pending_and_a_record_drops_it(live):
    state, files, r1 = str(live / "applied"), files_of(live), str(live / "releases/r1")
    applied.record(state, files, r1)
    compared = applied.compare(state, files[:1], r1)
    assert not compared["pending"]
    assert compared["stale"] == files[1:]
    assert applied.record(state, files[:1], r1)
    assert applied.compare(state, files[:1], r1)["stale"] == []


def test_restore_puts_back_the_files_their_modes_and_the_release(live):
    state, files, r1 = str(live / "applied"), files_of(live), str(live / "releases/r1")
    os.chmod(live / "etc/gunicorn.conf.py", 0o640)
    applied.record(state, files, r1)
    (live / "etc/gunicorn.conf.py").write_text("wsgi_app = 'typo'\n")
    os.chmod(live / "etc/gunicorn.conf.py", 0o666)
    (live / "etc/app.service").unlink()
    (live / "current").unlink()
    (live / "current").symlink_to(live / "releases/r2")
    restored = applied.restore(state, str(live / "current"))
    assert sorted(restored) == sorted([*files, str(live / "current")])
    assert (live / "etc/gunicorn.conf.py").read_text() == "gunicorn.conf.py v1\n"
    assert mode(live / "etc/gunicorn.conf.py") == 0o640
    assert (live / "etc/app.service").read_text() == "app.service v1\n"
    assert os.readlink(live / "current") == r1
    assert applied.restore(state, str(live / "current")) == []


def test_a_record_interrupted_while_replacing_the_previous_one_is_still_found(live):
    state, files, r1 = str(live / "applied"), files_of(live), str(live / "releases/r1")
    applied.record(state, files, r1)
    os.rename(state, state + ".old")
    assert applied.compare(state, files, r1)["recorded"]
    assert applied.record(state, files, str(live / "releases/r2"))
    assert not os.path.exists(state + ".old")
    assert applied.compare(state, files, str(live / "releases/r2"))["release"].endswith("r2")


def test_restore_without_a_record_changes_nothing(live):
    assert applied.restore(str(live / "applied"), str(live / "current")) == []
    assert os.readlink(live / "current") == str(live / "releases/r1")


def test_a_link_or_a_service_left_on_another_release_is_pending(live):
    state, files, r1 = str(live / "applied"), files_of(live), str(live / "releases/r1")
    current = str(live / "current")
    applied.record(state, files, r1)
    assert not applied.compare(state, files, r1, current)["pending"]
    switched = os.lstat(current).st_mtime
    assert not applied.compare(state, files, r1, current, switched + 0.5)["pending"]
    assert not applied.compare(state, files, r1, current, switched - 0.5)["pending"]
    # Started well before the link was switched, or not running at all.
    assert applied.compare(state, files, r1, current, switched - 30)["pending"]
    assert applied.compare(state, files, r1, current, 0)["pending"]
    (live / "current").unlink()
    (live / "current").symlink_to(live / "releases/r2")
    assert applied.compare(state, files, r1, current)["pending"]


lock = load("flask_gunicorn_lock")


def test_this_run_is_named_by_its_ansible_playbook_ancestor():
    name = lock.run_name(hostname="controller")
    host, pid, start = name.split(":")
    assert host == "controller" and int(pid) > 0 and start.isdigit()
    assert lock.alive(name, 0, 60, hostname="controller")


def test_a_dead_run_of_this_controller_is_not_alive_and_another_controllers_goes_stale():
    assert not lock.alive("controller:999999999:1", 0, 60, hostname="controller")
    assert not lock.alive(f"controller:{os.getpid()}:0", 0, 60, hostname="controller")
    assert lock.alive("elsewhere:1:1", since=1000, stale_after=60, hostname="controller", now=1030)
    assert not lock.alive(
        "elsewhere:1:1", since=1000, stale_after=60, hostname="controller", now=1100
    )


def test_one_run_holds_the_lock_and_replaces_only_the_holder_it_was_told(tmp_path):
    path = str(tmp_path / "flask_gunicorn.lock")
    assert lock.acquire(path, "c:1:1", "") == (True, "c:1:1", 0.0)
    assert lock.acquire(path, "c:1:1", "") == (True, "c:1:1", 0.0)
    taken = os.stat(path).st_mtime
    assert lock.acquire(path, "c:2:2", "") == (False, "c:1:1", taken)
    assert lock.acquire(path, "c:2:2", "c:9:9") == (False, "c:1:1", taken)
    assert not lock.release(path, "c:2:2")
    assert lock.acquire(path, "c:2:2", "c:1:1") == (True, "c:2:2", 0.0)
    assert lock.read(path)[0] == "c:2:2"
    assert lock.release(path, "c:2:2")
    assert lock.read(path) == ("", 0.0)
    assert os.listdir(tmp_path) == []


def test_the_run_is_named_by_the_topmost_ansible_playbook_process(tmp_path):
    """bash (10) -> ansible-playbook (20) -> its worker (30) -> sh (40) -> module (50)."""
    tree = {
        10: (1, "bash"),
        20: (10, "python3\0/v/bin/ansible-playbook"),
        30: (20, "python3\0/v/bin/ansible-playbook"),
    }
    tree.update({40: (30, "/bin/sh\0-c"), 50: (40, "python3")})
    for pid, (parent, cmdline) in tree.items():
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline.encode() + b"\0")
        fields = ["S", str(parent)] + ["0"] * 17 + [str(1000 + pid)]
        (tmp_path / str(pid) / "stat").write_text(f"{pid} (x) " + " ".join(fields))
    assert lock.run_name(50, str(tmp_path), "controller") == "controller:20:1020"


def test_the_lock_never_follows_a_link_and_refuses_a_directory_others_can_write(tmp_path):
    target = tmp_path / "target"
    target.write_text("secret first line\n")
    locks = tmp_path / "locks"
    locks.mkdir(mode=0o755)
    path = str(locks / "flask_gunicorn.lock")
    os.symlink(target, path)
    with pytest.raises(lock.UnsafeLock, match="is a link"):
        lock.acquire(path, "controller:1:1", "")
    with pytest.raises(lock.UnsafeLock, match="is a link"):
        lock.release(path, "controller:1:1")
    assert target.read_text() == "secret first line\n"
    os.unlink(path)
    locks.chmod(0o777)
    with pytest.raises(lock.UnsafeLock, match="writable by other users"):
        lock.acquire(path, "controller:1:1", "")
    assert not os.path.lexists(path)
    locks.chmod(0o755)
    assert lock.acquire(path, "controller:1:1", "") == (True, "controller:1:1", 0.0)


@pytest.mark.parametrize(
    ("prefix", "static", "static_dir", "health_path"),
    [
        ("", "/static", "hello/static", "/healthz"),
        ("/shop", "/static/", "shop/static", "/healthz"),
        ("/apps/shop.v2", "/assets/css", "static", "/health/ready?full=1&x=%2F"),
        # The app serves its static files: the static path is not nginx's.
        ("", "/", "", "/"),
        ("", "", "", "/static/health"),
        # The dot-file rule keeps /.well-known/ reachable; a dot inside a segment is no dot file.
        ("/shop", "/static", "static", "/.well-known/health"),
        ("/shop", "/static", "static", "/health.json"),
    ],
)
def test_paths_nginx_routes_to_the_app_are_accepted(prefix, static, static_dir, health_path):
    inputs.check_url_paths(prefix, static, static_dir, health_path)


@pytest.mark.parametrize(
    ("prefix", "static", "health_path", "refused"),
    [
        # nginx's dot-file rule answers these itself: the app would never see a request.
        ("/.git", "/static", "/healthz", 'flask_gunicorn_url_prefix: "/.git" has the path segment'),
        ("/apps/.hidden", "/static", "/healthz", 'flask_gunicorn_url_prefix: "/apps/.hidden"'),
        ("/.well-known", "/static", "/healthz", 'flask_gunicorn_url_prefix: "/.well-known"'),
        ("/shop/", "/static", "/healthz", 'flask_gunicorn_url_prefix: "/shop/" must be a path'),
        ("shop", "/static", "/healthz", 'flask_gunicorn_url_prefix: "shop" must be a path'),
        ("", "/.static", "/healthz", 'flask_gunicorn_static_url_path: "/.static" has the path'),
        # A static location of "/" takes every URL of the app.
        ("", "/", "/healthz", 'flask_gunicorn_static_url_path: "/" would make nginx serve every'),
        ("/shop", "", "/healthz", 'flask_gunicorn_static_url_path: "" would make nginx serve'),
        ("", "static", "/healthz", 'flask_gunicorn_static_url_path: "static" must be a path'),
        ("", "/st atic", "/healthz", 'flask_gunicorn_static_url_path: "/st atic" must be'),
        ("", "/static;", "/healthz", 'flask_gunicorn_static_url_path: "/static;" must be'),
        ("", "//", "/healthz", 'flask_gunicorn_static_url_path: "//" must be a path'),
        # The health path.
        (
            "",
            "/static",
            "/static/health",
            'flask_gunicorn_health_path: "/static/health" lies below',
        ),
        ("", "/static", "healthz", 'flask_gunicorn_health_path: "healthz" must be a URL path'),
        ("", "/static", "", 'flask_gunicorn_health_path: "" must be a URL path'),
        ("", "/static", "/health z", 'flask_gunicorn_health_path: "/health z" must be'),
        ("", "/static", "/healthz\n", 'flask_gunicorn_health_path: "/healthz\\n" must be'),
        ("", "/static", "/healthz#top", 'flask_gunicorn_health_path: "/healthz#top" must be'),
        ("", "/static", "/health[1-2]", 'flask_gunicorn_health_path: "/health[1-2]" must be'),
        ("", "/static", "/healthz%zz", 'flask_gunicorn_health_path: "/healthz%zz" must be'),
        ("", "/static", "/a/../healthz", 'flask_gunicorn_health_path: "/a/../healthz" has a'),
        ("", "/static", "/a/%2e%2E/healthz", '"/a/%2e%2E/healthz" has a "." or ".." segment'),
        ("", "/static", "/./healthz", 'flask_gunicorn_health_path: "/./healthz" has a'),
        ("", "/static", "/.env", 'flask_gunicorn_health_path: "/.env" has a path segment'),
        ("", "/static", "/%2Egit/x", 'flask_gunicorn_health_path: "/%2Egit/x" has a path'),
    ],
)
def test_paths_nginx_answers_itself_are_refused_naming_variable_and_value(
    prefix, static, health_path, refused
):
    with pytest.raises(inputs.Refused, match=re.escape(refused)):
        inputs.check_url_paths(prefix, static, "static", health_path)


def dump(*responses):
    """curl's --dump-header output: responses of a status line, headers and an empty line."""
    return "".join(
        f"{status}\r\n" + "".join(f"{h}\r\n" for h in headers) + "\r\n"
        for status, headers in responses
    )


HEADER = "X-Flask-Gunicorn-Upstream"


@pytest.mark.parametrize(
    ("stdout", "status", "from_app"),
    [
        (dump(("HTTP/1.1 200 OK", ["Server: nginx", f"{HEADER}: 200"])), 200, True),
        # HTTP/2 names headers in lowercase.
        (dump(("HTTP/2 404", [f"{HEADER.lower()}: 404"])), 404, True),
        # nginx's own answers: a dot file, a static file, the catch-all (no header at all).
        (dump(("HTTP/1.1 404 Not Found", ["Server: nginx"])), 404, False),
        (dump(("HTTP/1.1 403 Forbidden", [])), 403, False),
        # After a retry nginx lists every upstream status; the last is the one the client got.
        (dump(("HTTP/1.1 200 OK", [f"{HEADER}: 502, 200"])), 200, True),
        # A header that does not give the status sent was not the app's.
        (dump(("HTTP/1.1 404 Not Found", [f"{HEADER}: 200"])), 404, False),
        (dump(("HTTP/1.1 200 OK", [f"{HEADER}:"])), 200, False),
        # Only the last response counts (a 100 Continue first, say).
        (
            dump(("HTTP/1.1 100 Continue", [f"{HEADER}: 100"]), ("HTTP/1.1 404 Not Found", [])),
            404,
            False,
        ),
    ],
)
def test_the_probe_tells_the_apps_answer_from_nginxs(stdout, status, from_app):
    answer = health.parse("http://localhost/healthz", HEADER, 0, stdout)
    assert (answer.status, answer.from_app) == (status, from_app)


def test_no_answer_carries_curls_error():
    answer = health.parse("http://x/healthz", HEADER, 52, "", "curl: (52) Empty reply from server")
    assert answer.status is None and not answer.from_app
    assert "Empty reply from server" in answer.describe()
    assert not health.judge(answer)


def app(status):
    return health.Answer("http://x/", status, True)


def nginx(status):
    return health.Answer("http://x/", status, False)


@pytest.mark.parametrize(
    ("answers", "healthy"),
    [
        ((app(200),), True),
        ((app(404), app(200)), True),
        # An app without the health URL whose "/" asks for a login, or redirects.
        ((app(404), app(302)), True),
        ((app(404), app(401)), True),
        # nginx's own answers never count, on either URL.
        ((nginx(200),), False),
        ((nginx(404), None), False),
        ((app(404), nginx(403)), False),
        ((app(404), nginx(200)), False),
        # The app answers, but not as a healthy app does.
        ((app(503),), False),
        ((app(502),), False),
        ((app(301),), False),
        ((app(404), app(500)), False),
        ((app(404), app(404)), False),
        ((app(404), None), False),
    ],
)
def test_only_the_apps_healthy_answers_count(answers, healthy):
    assert health.judge(*answers) is healthy


def test_the_previous_site_comes_from_the_instances_own_record(tmp_path):
    assert instance.previous_site(instance.own_record(str(tmp_path), "hello")) == ""
    (tmp_path / "hello.json").write_text(json.dumps({"site": "_default"}))
    (tmp_path / "other.json").write_text(json.dumps({"site": "other.example.test"}))
    assert instance.previous_site(instance.own_record(str(tmp_path), "hello")) == "_default"


def test_an_acme_lineage_counts_once_its_certificate_and_key_lead_to_files(tmp_path):
    live = tmp_path / "live" / "example.com"
    assert instance.lineage_present(None) is False
    assert instance.lineage_present(str(live)) is False
    live.mkdir(parents=True)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "fullchain1.pem").write_text("certificate")
    (live / "fullchain.pem").symlink_to(archive / "fullchain1.pem")
    (live / "privkey.pem").symlink_to(archive / "privkey1.pem")
    # A link that leads nowhere is no key nginx can read.
    assert instance.lineage_present(str(live)) is False
    (archive / "privkey1.pem").write_text("key")
    assert instance.lineage_present(str(live)) is True


leave_site = load("flask_gunicorn_leave_site")


@pytest.fixture
def nginx(tmp_path):
    """An nginx configuration tree: hello alone on _default, shop and blog on shop.example.test."""
    root = tmp_path / "nginx"
    dirs = SimpleNamespace(
        available=root / "sites-available",
        enabled=root / "sites-enabled",
        locations=root / "flask_gunicorn",
        tls=root / "tls",
        stash=tmp_path / "stash" / "hello",
    )
    for directory in (dirs.available, dirs.enabled):
        directory.mkdir(parents=True)
    for site, names in (("_default", ["hello"]), ("shop.example.test", ["shop", "blog"])):
        (dirs.available / f"flask_gunicorn_site_{site}.conf").write_text(f"server {site}")
        (dirs.enabled / f"flask_gunicorn_site_{site}.conf").symlink_to(
            dirs.available / f"flask_gunicorn_site_{site}.conf"
        )
        (dirs.locations / site).mkdir(parents=True)
        for name in names:
            (dirs.locations / site / f"{name}.conf").write_text(f"location {name}")
        (dirs.tls / site).mkdir(parents=True, mode=0o700)
        (dirs.tls / site / "key.pem").write_text("key")
        os.chmod(dirs.tls / site / "key.pem", 0o600)
    for port in (80, 443):
        name = f"flask_gunicorn_catch_all_{port}.conf"
        (dirs.available / name).write_text("catch-all")
        (dirs.enabled / name).symlink_to(dirs.available / name)
    return dirs


def plan(dirs, name, site, paths=()):
    return leave_site.plan(
        name,
        site,
        [str(p) for p in paths],
        str(dirs.available),
        str(dirs.enabled),
        str(dirs.locations),
        str(dirs.tls),
    )


def snapshot(root):
    """Every path under root with its kind, mode and content or target."""
    found = {}
    for path in sorted(Path(root).rglob("*")):
        info = os.lstat(path)
        if path.is_symlink():
            found[str(path)] = ("link", os.readlink(path))
        elif path.is_dir():
            found[str(path)] = ("dir", stat.S_IMODE(info.st_mode))
        else:
            found[str(path)] = ("file", stat.S_IMODE(info.st_mode), path.read_text())
    return found


def test_the_last_instance_takes_its_server_block_along(nginx):
    moving, site_left = plan(nginx, "hello", "_default")
    assert site_left is True
    assert moving == [
        str(nginx.locations / "_default/hello.conf"),
        str(nginx.enabled / "flask_gunicorn_site__default.conf"),
        str(nginx.available / "flask_gunicorn_site__default.conf"),
        str(nginx.locations / "_default"),
        str(nginx.tls / "_default"),
    ]


def test_a_shared_server_block_stays_while_another_instance_is_on_it(nginx):
    moving, site_left = plan(nginx, "shop", "shop.example.test")
    assert site_left is False
    assert moving == [str(nginx.locations / "shop.example.test/shop.conf")]


def test_the_catch_alls_go_with_the_last_server_block_that_has_names(nginx):
    os.unlink(nginx.locations / "shop.example.test/blog.conf")
    moving, site_left = plan(nginx, "shop", "shop.example.test", [nginx.available / "shop.conf"])
    assert site_left is True
    # The upstream given in paths does not exist: only what exists is moved.
    assert str(nginx.available / "shop.conf") not in moving
    assert str(nginx.enabled / "flask_gunicorn_site_shop.example.test.conf") in moving
    # Only the server block without names is left: the catch-alls would clash with its default.
    assert [p for p in moving if "catch_all" in os.path.basename(p)] == [
        str(nginx.enabled / "flask_gunicorn_catch_all_443.conf"),
        str(nginx.enabled / "flask_gunicorn_catch_all_80.conf"),
        str(nginx.available / "flask_gunicorn_catch_all_443.conf"),
        str(nginx.available / "flask_gunicorn_catch_all_80.conf"),
    ]


def test_leaving_then_restoring_puts_every_file_back_as_it_was(nginx):
    before = snapshot(nginx.enabled.parent)
    moving, _ = plan(nginx, "hello", "_default")
    leave_site.leave(str(nginx.stash), moving)
    assert not (nginx.tls / "_default").exists()
    assert not os.path.lexists(nginx.enabled / "flask_gunicorn_site__default.conf")
    assert mode(nginx.stash) == 0o700
    # What a failed run may have made in the meantime is replaced by what was there.
    (nginx.locations / "_default").mkdir()
    assert leave_site.restore(str(nginx.stash)) == list(reversed(moving))
    assert snapshot(nginx.enabled.parent) == before
    assert not nginx.stash.exists()


def test_dropping_deletes_the_stash_and_what_it_holds(nginx):
    moving, _ = plan(nginx, "hello", "_default")
    leave_site.leave(str(nginx.stash), moving)
    (nginx.stash.parent / "shop").mkdir()
    assert leave_site.drop(str(nginx.stash)) is True
    assert not nginx.stash.exists()
    # Kept for the other instance's stash, removed with the last one.
    assert nginx.stash.parent.exists()
    (nginx.stash.parent / "shop").rmdir()
    leave_site.leave(str(nginx.stash), [])
    assert not nginx.stash.exists()
    leave_site.leave(str(nginx.stash), [str(nginx.available / "flask_gunicorn_catch_all_80.conf")])
    assert leave_site.drop(str(nginx.stash)) is True
    assert not nginx.stash.parent.exists()
    assert not any("_default" in path for path in snapshot(nginx.enabled.parent))
    assert leave_site.drop(str(nginx.stash)) is False


def test_a_stash_left_by_an_interrupted_run_is_extended_and_restored_whole(nginx):
    before = snapshot(nginx.enabled.parent)
    leave_site.leave(str(nginx.stash), plan(nginx, "hello", "_default")[0])
    leave_site.leave(str(nginx.stash), plan(nginx, "shop", "shop.example.test")[0])
    assert len(leave_site.restore(str(nginx.stash))) == 6
    assert snapshot(nginx.enabled.parent) == before


def test_the_record_keeps_the_last_server_block_until_nginx_has_the_new_one():
    new = {"name": "hello", "base_dir": "/srv/hello", "site": "other.example.test"}
    new.update(server_names=["other.example.test"], site_settings={"https_port": 443})
    assert instance.record_before_nginx(new, {}) == new
    previous = {"name": "hello", "base_dir": "/srv/old", "site": "_default"}
    previous.update(server_names=[], site_settings={"https_port": 8443})
    assert instance.record_before_nginx(new, previous) == {
        **new,
        "site": "_default",
        "server_names": [],
        "site_settings": {"https_port": 8443},
    }


def test_a_live_socket_moves_only_when_the_user_allows_it():
    previous = {"socket_path": "/run/hello.sock"}
    instance.check_socket_move("/run/hello.sock", previous, False)
    instance.check_socket_move("/run/hello-2.sock", {}, False)
    instance.check_socket_move("/run/hello-2.sock", previous, True)
    with pytest.raises(instance.Refused) as refused:
        instance.check_socket_move("/run/hello-2.sock", previous, False)
    message = str(refused.value)
    assert message.startswith('flask_gunicorn_socket_path: "/run/hello-2.sock" moves')
    assert '"/run/hello.sock"' in message and "flask_gunicorn_allow_socket_move=true" in message


def test_the_catch_alls_stay_for_the_named_server_block_the_instance_goes_to(nginx):
    os.unlink(nginx.locations / "shop.example.test/blog.conf")
    # Left before the new files are written: the new block has no link yet, and needs them.
    moving, _ = leave_site.plan(
        "shop",
        "shop.example.test",
        [],
        str(nginx.available),
        str(nginx.enabled),
        str(nginx.locations),
        str(nginx.tls),
        "other.example.test",
    )
    assert not [p for p in moving if "catch_all" in os.path.basename(p)]
    assert str(nginx.enabled / "flask_gunicorn_site_shop.example.test.conf") in moving


nginx_change = load("flask_gunicorn_nginx_change")
REFUSE = ["sh", "-c", "echo 'nginx: [emerg] unknown directive \"bad\"' >&2; exit 1"]
ACCEPT = ["true"]


@pytest.fixture
def conf(tmp_path):
    """A live nginx configuration: a server block, its TLS key, Debian's default site enabled."""
    root = tmp_path / "nginx"
    dirs = SimpleNamespace(
        root=root,
        available=root / "sites-available",
        enabled=root / "sites-enabled",
        tls=root / "tls/hello",
        outside=tmp_path / "outside",
    )
    for directory in (dirs.available, dirs.enabled, dirs.tls, dirs.outside):
        directory.mkdir(parents=True)
    (dirs.available / "site.conf").write_text("server { old; }\n")
    os.chmod(dirs.available / "site.conf", 0o644)
    (dirs.enabled / "site.conf").symlink_to(dirs.available / "site.conf")
    (dirs.available / "default").write_text("server { default; }\n")
    (dirs.enabled / "default").symlink_to(dirs.available / "default")
    (dirs.tls / "key.pem").write_text("OLD KEY\n")
    os.chmod(dirs.tls / "key.pem", 0o600)
    (dirs.outside / "target").write_text("never written\n")
    return dirs


def wanted(dest, content, mode=0o644, secret=False):
    return {
        "dest": str(dest),
        "content": content,
        "mode": mode,
        "uid": UID,
        "gid": GID,
        "secret": secret,
    }


def change_everything(conf):
    """New site content, a new upstream, its link, a new TLS key; the default site removed."""
    return nginx_change.plan(
        [
            wanted(conf.available / "site.conf", "server { new; }\n"),
            wanted(conf.available / "upstream.conf", "upstream hello {}\n"),
            wanted(conf.tls / "key.pem", "NEW KEY\n", 0o600, secret=True),
        ],
        enable=[str(conf.available / "site.conf"), str(conf.available / "upstream.conf")],
        remove=[str(conf.enabled / "default")],
        sites_enabled=str(conf.enabled),
    )


def test_a_change_nginx_accepts_is_made_whole(conf):
    steps = change_everything(conf)
    # The link of site.conf is there already: not a step.
    assert [step.path for step in steps] == [
        str(conf.available / "site.conf"),
        str(conf.available / "upstream.conf"),
        str(conf.tls / "key.pem"),
        str(conf.enabled / "upstream.conf"),
        str(conf.enabled / "default"),
    ]
    assert nginx_change.apply(steps, ACCEPT) is True
    assert (conf.available / "site.conf").read_text() == "server { new; }\n"
    assert os.readlink(conf.enabled / "upstream.conf") == str(conf.available / "upstream.conf")
    assert (conf.tls / "key.pem").read_text() == "NEW KEY\n" and mode(conf.tls / "key.pem") == 0o600
    assert not os.path.lexists(conf.enabled / "default")
    # No temporary file is left where nginx reads.
    assert sorted(os.listdir(conf.available)) == ["default", "site.conf", "upstream.conf"]
    assert change_everything(conf) == []


def test_a_refused_change_puts_every_file_and_link_back_and_removes_new_ones(conf):
    before = snapshot(conf.root)
    with pytest.raises(nginx_change.ChangeFailed) as failed:
        nginx_change.apply(change_everything(conf), REFUSE)
    assert snapshot(conf.root) == before
    assert failed.value.rc == 1 and failed.value.not_restored == []
    message = nginx_change.failure_message("The nginx configuration fails.", failed.value)
    assert (
        message
        == 'The nginx configuration fails. nginx said: nginx: [emerg] unknown directive "bad"'
    )


def test_a_refused_removal_puts_the_removed_file_back(conf):
    (conf.enabled / "legacy.conf").write_text("server { legacy; }\n")
    os.chmod(conf.enabled / "legacy.conf", 0o640)
    before = snapshot(conf.root)
    steps = nginx_change.plan([], remove=[str(conf.enabled / "legacy.conf")])
    with pytest.raises(nginx_change.ChangeFailed):
        nginx_change.apply(steps, REFUSE)
    assert snapshot(conf.root) == before
    assert mode(conf.enabled / "legacy.conf") == 0o640


def test_a_link_planted_at_a_destination_is_replaced_never_followed(conf):
    (conf.available / "upstream.conf").symlink_to(conf.outside / "target")
    os.unlink(conf.enabled / "site.conf")
    (conf.enabled / "site.conf").symlink_to(conf.outside / "target")
    before = snapshot(conf.root)
    files = [wanted(conf.available / "upstream.conf", "upstream hello {}\n")]
    enable = [str(conf.available / "site.conf")]
    with pytest.raises(nginx_change.ChangeFailed):
        nginx_change.apply(nginx_change.plan(files, enable, (), str(conf.enabled)), REFUSE)
    assert snapshot(conf.root) == before
    nginx_change.apply(nginx_change.plan(files, enable, (), str(conf.enabled)), ACCEPT)
    assert not os.path.islink(conf.available / "upstream.conf")
    assert os.readlink(conf.enabled / "site.conf") == str(conf.available / "site.conf")
    assert (conf.outside / "target").read_text() == "never written\n"
    assert mode(conf.outside / "target") == 0o644


def test_unchanged_input_changes_nothing_and_runs_no_test(conf):
    calls = []

    def run(argv):
        calls.append(argv)
        return 0, "", ""

    files = [wanted(conf.available / "site.conf", "server { old; }\n")]
    steps = nginx_change.plan(files, [str(conf.available / "site.conf")], (), str(conf.enabled))
    assert steps == []
    assert nginx_change.apply(steps, ACCEPT, run=run) is False
    assert calls == []
    # A reload an earlier run owes: tested all the same.
    assert nginx_change.apply(steps, ["nginx", "-t"], pending=True, run=run) is True
    assert calls == [["nginx", "-t"]]


def test_a_mode_alone_is_a_change(conf):
    steps = nginx_change.plan([wanted(conf.tls / "key.pem", "OLD KEY\n", 0o640)])
    assert [step.path for step in steps] == [str(conf.tls / "key.pem")]


def test_a_directory_at_a_destination_is_refused_before_anything_changes(conf):
    (conf.available / "upstream.conf").mkdir()
    with pytest.raises(nginx_change.Refused, match=r'upstream\.conf" is a directory'):
        nginx_change.plan(
            [wanted(conf.available / "site.conf", "server { new; }\n")],
            remove=[str(conf.available / "upstream.conf")],
        )


def test_a_step_that_fails_puts_back_the_steps_before_it(conf):
    before = snapshot(conf.root)
    steps = nginx_change.plan(
        [
            wanted(conf.available / "site.conf", "server { new; }\n"),
            wanted(conf.root / "missing/locations.conf", "location / {}\n"),
        ]
    )
    with pytest.raises(nginx_change.ChangeFailed, match=r'Changing ".*/missing/locations\.conf"'):
        nginx_change.apply(steps, ACCEPT)
    assert snapshot(conf.root) == before


def test_the_diff_never_shows_secret_content(conf):
    shown = json.dumps(nginx_change.diff(change_everything(conf)))
    assert "server { new; }" in shown and "(secret content, not shown)" in shown
    assert "NEW KEY" not in shown and "OLD KEY" not in shown


def run_module(tmp_path, **args):
    return run_named("flask_gunicorn_nginx_change", tmp_path, **args)


def module_args(conf, site="server { new; }\n", key="NEW KEY\n"):
    # The user running the tests owns the files: root by default, as on a host.
    owned = {"owner": pwd.getpwuid(UID).pw_name, "group": grp.getgrgid(GID).gr_name}
    return {
        "files": [
            {"dest": str(conf.available / "site.conf"), "content": site, **owned},
            {"dest": str(conf.tls / "key.pem"), "secret_content": key, "mode": "0600", **owned},
        ],
        "enable": [str(conf.available / "site.conf")],
        "sites_enabled": str(conf.enabled),
        "remove": [str(conf.enabled / "default")],
        "test_command": REFUSE,
        "failure_msg": "The nginx configuration for hello fails `nginx -t`.",
    }


def test_check_mode_reports_the_change_and_makes_none(conf, tmp_path):
    before = snapshot(conf.root)
    result = run_module(tmp_path, _ansible_check_mode=True, _ansible_diff=True, **module_args(conf))
    assert snapshot(conf.root) == before
    assert result["changed"] is True and result["tested"] is False
    assert result["changed_paths"] == [
        str(conf.available / "site.conf"),
        str(conf.tls / "key.pem"),
        str(conf.enabled / "default"),
    ]
    assert "KEY" not in json.dumps(result)


def test_the_module_fails_with_nginxs_message_and_keeps_the_key_out_of_it(conf, tmp_path):
    before = snapshot(conf.root)
    result = run_module(tmp_path, **module_args(conf))
    assert snapshot(conf.root) == before
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == (
        "The nginx configuration for hello fails `nginx -t`."
        ' nginx said: nginx: [emerg] unknown directive "bad"'
    )
    assert "NEW KEY" not in json.dumps(result)


def test_the_module_reports_no_change_and_runs_no_test_when_all_is_in_place(conf, tmp_path):
    os.unlink(conf.enabled / "default")
    result = run_module(tmp_path, **module_args(conf, "server { old; }\n", "OLD KEY\n"))
    # The test would refuse: it did not run.
    assert result["changed"] is False and result["tested"] is False
    assert result["changed_paths"] == [] and result["reload_needed"] is False


@pytest.mark.parametrize("path", sorted(MODULES.glob("*.py")), ids=lambda path: path.stem)
def test_each_modules_documentation_is_yaml_that_ansible_doc_can_read(path):
    module = load(path.stem)
    for block in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
        assert yaml.safe_load(getattr(module, block)) is not None, block


releases = load("flask_gunicorn_releases")


@pytest.fixture
def base(tmp_path):
    """An app's base directory: releases/, the history file and the current link."""
    layout = SimpleNamespace(
        root=tmp_path,
        releases=tmp_path / "releases",
        history=tmp_path / "history",
        current=tmp_path / "current",
    )
    layout.releases.mkdir()
    return layout


def build(base, *ids, complete=True):
    for release in ids:
        (base.releases / release / "src").mkdir(parents=True)
        if complete:
            (base.releases / release / ".complete").write_text("")


def went_live(base, *ids):
    base.history.write_text("".join(f"{release}\n" for release in ids))


def point(base, release):
    if os.path.lexists(base.current):
        base.current.unlink()
    base.current.symlink_to(base.releases / release)


def read_app(base):
    return releases.read(str(base.history), str(base.releases), str(base.current), "notes")


def prune(base, release, keep, check_mode=False):
    """What prune keeps and removes, as the module does it; the names of the removed releases."""
    history = releases.read_history(str(base.history)) or []
    current = releases.serving(str(base.current))
    kept, remove = releases.plan_prune(str(base.releases), history, release, current, keep)
    if not check_mode:
        releases.remove_releases(remove)
    return kept, [os.path.basename(path) for path in remove]


def on_disk(base):
    return sorted(os.listdir(base.releases))


def test_the_rollback_target_is_the_release_that_went_live_before_the_serving_one(base):
    build(base, "r1", "r2", "r3")
    went_live(base, "r1", "r2", "r3")
    point(base, "r3")
    assert read_app(base) == {
        "history": ["r1", "r2", "r3"],
        "serving": "r3",
        "rollback_target": "r2",
        "rollback_refusal": "",
    }
    # The rollback appends r2: the next one goes back one release more.
    went_live(base, "r1", "r2", "r3", "r2")
    point(base, "r2")
    assert read_app(base)["rollback_target"] == "r1"


def test_a_missing_history_refuses_rollback_naming_the_history_file(base):
    build(base, "r1")
    point(base, "r1")
    found = read_app(base)
    assert found["history"] == [] and found["serving"] == "r1"
    assert found["rollback_target"] == ""
    assert found["rollback_refusal"] == (
        "notes has no earlier release on this host to roll back to"
        f' (no history at "{base.history}", current names "r1"); nothing was changed.'
    )
    assert "'" not in found["rollback_refusal"]


def test_an_empty_history_refuses_rollback_naming_the_history(base):
    went_live(base)
    found = read_app(base)
    assert found["history"] == [] and found["serving"] == ""
    assert found["rollback_refusal"] == (
        "notes has no earlier release on this host to roll back to"
        f' (history "{base.history}": [], no current release); nothing was changed.'
    )


def test_the_first_release_has_nothing_to_roll_back_to(base):
    build(base, "r1")
    went_live(base, "r1")
    point(base, "r1")
    assert read_app(base)["rollback_refusal"].startswith(
        "notes has no earlier release on this host to roll back to"
        f' (history "{base.history}": ["r1"], current names "r1")'
    )


def test_current_not_in_the_history_goes_back_to_the_last_release_of_the_history(base):
    """A run killed after its switch: current names a release that never proved healthy."""
    build(base, "r1", "r2")
    build(base, "r3", complete=False)
    went_live(base, "r1", "r2", "r1")
    point(base, "r3")
    found = read_app(base)
    assert found["serving"] == "r3"
    # The last entry, r1, not r2: r1 went live last.
    assert found["rollback_target"] == "r1" and found["rollback_refusal"] == ""


def test_current_on_a_failed_release_is_kept_until_current_moves_and_never_a_target(base):
    build(base, "r1", "r2")
    build(base, "failed", complete=False)
    went_live(base, "r1", "r2")
    point(base, "failed")
    assert read_app(base)["rollback_target"] == "r2"
    # The rollback appends nothing (r2 is the last entry), then prunes with current on r2.
    assert prune(base, "r2", 5, check_mode=True) == (["r2", "r1", "failed"], [])
    point(base, "r2")
    assert prune(base, "r2", 5) == (["r2", "r1"], ["failed"])
    assert on_disk(base) == ["r1", "r2"]


def test_a_release_that_went_live_twice_counts_by_its_last_time_live(base):
    build(base, "r1", "r2", "r3")
    went_live(base, "r1", "r2", "r3", "r2", "r1")
    point(base, "r1")
    # Rollbacks walked back to r1: nothing went live before it.
    assert read_app(base)["rollback_target"] == ""
    build(base, "r4")
    kept, removed = prune(base, "r4", 3)
    assert kept == ["r4", "r1", "r2"] and removed == ["r3"]


@pytest.mark.parametrize(
    ("history", "current", "target"),
    [
        # Rolled back from r3 to r2, then r4 went live: back to r2, never to r3.
        (["r1", "r2", "r3", "r2", "r4"], "r4", "r2"),
        # Rolled back from r2 to r1, then r3 went live: back to r1.
        (["r1", "r2", "r1", "r3"], "r3", "r1"),
        # r1 went live again by a deploy after r3: back to r3.
        (["r1", "r2", "r3", "r1"], "r1", "r3"),
        # Two rollbacks in a row walk back two releases.
        (["r1", "r2", "r3", "r2"], "r2", "r1"),
        # A run killed after its switch to a release that went live before: the last release.
        (["r1", "r2", "r3"], "r2", "r3"),
        (["r1", "r2", "r3"], "", "r3"),
    ],
)
def test_rollback_walks_back_the_way_releases_went_live(base, history, current, target):
    build(base, "r1", "r2", "r3", "r4")
    went_live(base, *history)
    if current:
        point(base, current)
    assert read_app(base)["rollback_target"] == target


def test_a_target_whose_directory_is_gone_or_incomplete_is_refused(base):
    build(base, "r2")
    build(base, "r1", complete=False)
    went_live(base, "r0", "r1", "r2")
    point(base, "r2")
    found = read_app(base)
    assert found["rollback_target"] == ""
    assert found["rollback_refusal"] == (
        'notes has no earlier release on this host to roll back to: "r1", the release before "r2",'
        f' is gone or incomplete in "{base.releases}"'
        f' (history "{base.history}": ["r0", "r1", "r2"], current names "r2"); nothing was changed.'
    )
    shutil.rmtree(base.releases / "r1")
    assert read_app(base)["rollback_refusal"].startswith(
        'notes has no earlier release on this host to roll back to: "r1"'
    )


def test_record_appends_atomically_once_as_root_would_own_it(base):
    changed, before, after = releases.record(str(base.history), "r1", uid=UID, gid=GID)
    assert (changed, before, after) == (True, [], ["r1"])
    assert base.history.read_text() == "r1\n" and mode(base.history) == 0o644
    assert releases.record(str(base.history), "r1", uid=UID, gid=GID) == (False, ["r1"], ["r1"])
    assert releases.record(str(base.history), "r2", uid=UID, gid=GID)[0]
    assert releases.record(str(base.history), "r1", uid=UID, gid=GID)[2] == ["r1", "r2", "r1"]
    assert base.history.read_text() == "r1\nr2\nr1\n"
    # No temporary file is left beside it.
    assert sorted(os.listdir(base.root)) == ["history", "releases"]


def test_record_refuses_a_link_at_the_history_and_a_release_that_is_no_plain_name(base):
    outside = base.root / "outside"
    outside.write_text("untouched\n")
    base.history.symlink_to(outside)
    with pytest.raises(releases.Refused, match=r'history" is a link'):
        releases.record(str(base.history), "r1", uid=UID, gid=GID)
    assert outside.read_text() == "untouched\n"
    base.history.unlink()
    for bad in ("", "..", "../r1", "a/b", ".hidden"):
        with pytest.raises(releases.Refused, match="is not a release id"):
            releases.record(str(base.history), bad, uid=UID, gid=GID)
    assert not base.history.exists()


def test_failed_releases_are_never_kept_and_never_push_good_ones_out(base):
    build(base, "r1", "r2", "r3")
    build(base, "broken-build", complete=False)
    build(base, "refused-by-health")
    went_live(base, "r1", "r2", "r3")
    point(base, "r3")
    assert read_app(base)["rollback_target"] == "r2"
    kept, removed = prune(base, "r3", 3)
    assert kept == ["r3", "r2", "r1"]
    assert removed == ["broken-build", "refused-by-health"]
    assert on_disk(base) == ["r1", "r2", "r3"]


def test_keep_releases_1_keeps_the_serving_release_alone(base):
    build(base, "r1", "r2", "r3")
    went_live(base, "r1", "r2", "r3")
    point(base, "r3")
    assert prune(base, "r3", 1) == (["r3"], ["r1", "r2"])
    assert on_disk(base) == ["r3"]
    with pytest.raises(releases.Refused, match="keep_releases: 0 must be 1 or more"):
        prune(base, "r3", 0)


def test_the_serving_release_is_kept_even_when_older_than_the_kept_window(base):
    build(base, "r1", "r2", "r3", "r4")
    went_live(base, "r1", "r2", "r3", "r4")
    # Check mode of a rollback to r1: not yet in the history's end, current still on r4.
    point(base, "r4")
    assert prune(base, "r1", 1, check_mode=True) == (["r1", "r4"], ["r2", "r3"])
    point(base, "r1")
    assert prune(base, "r1", 2) == (["r1", "r4"], ["r2", "r3"])
    assert on_disk(base) == ["r1", "r4"]


def test_a_link_among_the_releases_or_inside_one_is_never_followed(base):
    outside = base.root / "outside"
    (outside / "data").mkdir(parents=True)
    (outside / "data" / "notes.db").write_text("keep me\n")
    build(base, "r1", "r2", "old")
    # A shared instance folder linked into the release that goes.
    (base.releases / "old" / "src" / "instance").symlink_to(outside / "data")
    (base.releases / "planted").symlink_to(outside)
    went_live(base, "old", "r1", "r2")
    point(base, "r2")
    assert prune(base, "r2", 2) == (["r2", "r1"], ["old"])
    assert on_disk(base) == ["planted", "r1", "r2"]
    assert os.readlink(base.releases / "planted") == str(outside)
    assert (outside / "data" / "notes.db").read_text() == "keep me\n"


def test_check_mode_removes_nothing(base):
    build(base, "r1", "r2", "r3")
    went_live(base, "r1", "r2")
    point(base, "r2")
    before = snapshot(base.root)
    assert prune(base, "r3", 2, check_mode=True) == (["r3", "r2"], ["r1"])
    assert releases.record(str(base.history), "r3", check_mode=True) == (
        True,
        ["r1", "r2"],
        ["r1", "r2", "r3"],
    )
    assert snapshot(base.root) == before


def run_releases(tmp_path, **args):
    """flask_gunicorn_releases as Ansible runs it."""
    return run_named("flask_gunicorn_releases", tmp_path, **args)


def r3_current_after_two_live(base):
    """r1 and r2 went live, current names r3 (not in the history yet): the module's paths."""
    build(base, "r1", "r2", "r3")
    went_live(base, "r1", "r2")
    point(base, "r3")
    return {
        "history_file": str(base.history),
        "releases_dir": str(base.releases),
        "current_link": str(base.current),
        "release": "r3",
        "keep_releases": 2,
    }


def test_the_module_reports_and_diffs_in_check_mode_then_changes_and_then_changes_nothing(base):
    paths = r3_current_after_two_live(base)
    before = snapshot(base.root)
    checked = {"_ansible_check_mode": True, "_ansible_diff": True}
    recorded = run_releases(base.root, state="record", **checked, **paths)
    pruned = run_releases(base.root, state="prune", **checked, **paths)
    assert snapshot(base.root) == before
    assert recorded["changed"] is True and recorded["history"] == ["r1", "r2", "r3"]
    assert recorded["diff"]["before"] == "r1\nr2\n" and recorded["diff"]["after"] == "r1\nr2\nr3\n"
    assert pruned["changed"] is True and pruned["removed"] == [str(base.releases / "r1")]
    assert pruned["diff"]["after"] == "r2\nr3\n"
    for state in ("record", "prune"):
        assert run_releases(base.root, state=state, **paths)["changed"] is True
    assert base.history.read_text() == "r1\nr2\nr3\n" and on_disk(base) == ["r2", "r3"]
    for state in ("read", "record", "prune"):
        assert run_releases(base.root, state=state, **paths)["changed"] is False
    assert run_releases(base.root, state="read", **paths)["rollback_target"] == "r2"


def test_record_and_prune_is_one_task_that_prunes_by_the_history_it_records(base):
    paths = r3_current_after_two_live(base)
    before = snapshot(base.root)
    checked = run_releases(
        base.root, state="record_and_prune", _ansible_check_mode=True, _ansible_diff=True, **paths
    )
    assert snapshot(base.root) == before
    # r3 counts as live in the plan: r1 is the one beyond the two kept.
    assert checked["changed"] is True and checked["removed"] == [str(base.releases / "r1")]
    assert [diff["after"] for diff in checked["diff"]] == ["r1\nr2\nr3\n", "r2\nr3\n"]
    assert run_releases(base.root, state="record_and_prune", **paths)["changed"] is True
    assert base.history.read_text() == "r1\nr2\nr3\n" and on_disk(base) == ["r2", "r3"]
    assert run_releases(base.root, state="record_and_prune", **paths)["changed"] is False


def test_the_module_fails_with_the_refusal_of_a_bad_release_id(base):
    result = run_releases(base.root, state="record", history_file=str(base.history), release="../x")
    assert result["failed"] is True
    assert result["msg"].startswith('release: "../x" is not a release id')
    assert not base.history.exists()


# flask_gunicorn_inputs: the rules of both roles' inputs, once.


def refusal(**params):
    """The message inputs.check refuses params with."""
    with pytest.raises(inputs.Refused) as refused:
        inputs.check(params)
    return str(refused.value)


@pytest.mark.parametrize(
    ("given", "names"),
    [
        ("example.com", ["example.com"]),
        ("example.com www.example.com", ["example.com", "www.example.com"]),
        (" example.com\n\twww.example.com\n", ["example.com", "www.example.com"]),
        (["example.com", "www.example.com"], ["example.com", "www.example.com"]),
        ([], []),
        ("", []),
        # A wildcard name, as nginx takes it: "*." in front.
        (["*.example.com", "example.com"], ["*.example.com", "example.com"]),
        # Internationalised names in their punycode form.
        ("xn--bcher-kva.example", ["xn--bcher-kva.example"]),
        # A label of 63 characters, single-letter labels, digits, "-" inside a label.
        ("a" * 63 + ".example", ["a" * 63 + ".example"]),
        ("x.y.z 1.2.3.4 web-1.example", ["x.y.z", "1.2.3.4", "web-1.example"]),
        # nginx drops the trailing dot of the Host it matches, not that of a server name: dropped.
        ("example.com.", ["example.com"]),
        ("*.example.com.", ["*.example.com"]),
        # Each name once, in the order given, as first written (nginx compares in lowercase).
        (
            "example.com www.example.com Example.COM example.com.",
            ["example.com", "www.example.com"],
        ),
        (["Shop.example", "shop.example"], ["Shop.example"]),
    ],
)
def test_server_names_are_a_list_of_host_names_each_once(given, names):
    assert inputs.check({"server_name": given}) == {"server_names": names}


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("example.com; return 200", 'has ";" in the label "com; return 200"'),
        ("example.com\n", 'has "\\n" in the label "com\\n"'),
        ("example .com", 'has " " in the label "example "'),
        ("my_host.example", 'has "_" in the label "my_host"'),
        (
            "b\u00fccher.example",
            'is not ASCII: write it in its punycode form "xn--bcher-kva.example"',
        ),
        ("a" * 64 + ".example", f'has a label of 64 characters, "{"a" * 64}"'),
        (".".join(["a" * 63] * 4), "is longer than 253 characters"),
        ("-shop.example", 'has the label "-shop", starting or ending with "-"'),
        ("shop-.example", 'has the label "shop-", starting or ending with "-"'),
        ("shop..example", "has an empty label"),
        (".example.com", "has an empty label"),
        ("example.com..", "has an empty label"),
        ("", "is empty"),
        # The wildcard is a whole first label only.
        ("www.*.example", 'has a "*" that is not the whole first label'),
        ("example.*", 'has a "*" that is not the whole first label'),
        ("*example.com", 'has a "*" that is not the whole first label'),
        ("*.*.example.com", 'has a "*" that is not the whole first label'),
        ("*", 'has a "*" that is not the whole first label'),
        ("*.", "has an empty label"),
        (5, "is not a string"),
    ],
)
def test_server_names_that_are_not_host_names_are_refused_by_name(name, why):
    message = refusal(server_name=[name])
    assert message.startswith(f"flask_gunicorn_server_name: {json.dumps([name])} holds ")
    assert f"holds {json.dumps(name)}, which {why}" in message


def test_every_refused_name_is_named_with_the_value_as_written_and_the_rule():
    given = "ok.example bad_one.example also;bad"
    message = refusal(role="flask_gunicorn_lb", server_name=given)
    assert message.startswith(f"flask_gunicorn_lb_server_name: {json.dumps(given)} holds ")
    assert '"bad_one.example", which has "_"' in message
    assert '"also;bad", which has ";"' in message
    assert '"ok.example"' not in message.split(" holds ", 1)[1]
    assert "Server names are host names" in message


@pytest.mark.parametrize("given", [{"example.com": True}, 5, True])
def test_a_server_name_that_is_neither_a_list_nor_a_string_is_refused(given):
    assert refusal(server_name=given) == (
        f"flask_gunicorn_server_name: {json.dumps(given)} must be a list, or a string of items "
        "separated by spaces."
    )


@pytest.mark.parametrize(
    ("given", "proxies"),
    [
        ("10.0.0.1", ["10.0.0.1"]),
        ("10.0.0.1 10.0.0.0/8", ["10.0.0.1", "10.0.0.0/8"]),
        (["172.29.99.10", "192.168.0.0/16"], ["172.29.99.10", "192.168.0.0/16"]),
        (["0.0.0.0/0", "::/0"], ["0.0.0.0/0", "::/0"]),
        # IPv6 goes to set_real_ip_from and geo bare, as nginx takes it there.
        (["2001:db8::1", "2001:DB8::/32", "::1"], ["2001:db8::1", "2001:DB8::/32", "::1"]),
        (["[2001:db8::1]", "[2001:db8::]/48"], ["2001:db8::1", "2001:db8::/48"]),
        (["::ffff:10.0.0.1"], ["::ffff:10.0.0.1"]),
        # A range with host bits set: nginx would warn they are meaningless; it gets the network.
        (["10.1.2.3/8", "2001:db8::1/32"], ["10.0.0.0/8", "2001:db8::/32"]),
        # Each address or range once, as first written.
        (["10.0.0.1", "10.0.0.1/32", "10.0.0.0/8", "10.9.9.9/8"], ["10.0.0.1", "10.0.0.0/8"]),
        (["2001:db8::1", "[2001:DB8:0::1]"], ["2001:db8::1"]),
        ([], []),
    ],
)
def test_trusted_proxies_are_addresses_or_ranges_as_nginx_takes_them(given, proxies):
    assert inputs.check({"trusted_proxies": given}) == {"trusted_proxies": proxies}


@pytest.mark.parametrize(
    ("proxy", "why"),
    [
        ("10.0.0.256", "is not an IP address or a CIDR range"),
        ("10.0.0", "is not an IP address or a CIDR range"),
        ("010.0.0.1", "is not an IP address: an IPv4 address has no leading zeros"),
        ("10.0.0.0/33", "has a prefix length that is not 0 to 32"),
        ("10.0.0.0/08", "has a prefix length that is not 0 to 32"),
        ("10.0.0.0/", "has a prefix length that is not 0 to 32"),
        ("10.0.0.0/8/8", "has a prefix length that is not 0 to 32"),
        ("2001:db8::/129", "has a prefix length that is not 0 to 128"),
        ("2001:db8::g", "is not an IP address or a CIDR range"),
        ("fe80::1%eth0", 'has an IPv6 zone ("%..."), which nginx does not take'),
        ("[10.0.0.1]", "is in brackets, which hold an IPv6 address only"),
        ("[2001:db8::1", "is not an IP address or a CIDR range"),
        ("proxy.example.com", "is not an IP address or a CIDR range"),
        ("unix:", "is not an IP address or a CIDR range"),
        ("10.0.0.1\n", "is not an IP address or a CIDR range"),
        ("10.0.0.1; allow all", "is not an IP address or a CIDR range"),
        ("", "is not an IP address or a CIDR range"),
    ],
)
def test_trusted_proxies_that_are_not_addresses_or_ranges_are_refused_by_name(proxy, why):
    message = refusal(trusted_proxies=[proxy])
    assert message.startswith(
        f"flask_gunicorn_trusted_proxies: {json.dumps([proxy])} holds {json.dumps(proxy)}, "
        f"which {why}. Trusted proxies are IPv4 or IPv6 addresses or CIDR ranges"
    )


def backend(name="web1", address="10.0.0.11", port=80):
    return {"name": name, "address": address, "port": port}


@pytest.mark.parametrize(
    ("address", "port", "server"),
    [
        ("10.0.0.11", 80, "10.0.0.11:80"),
        ("10.0.0.11", "8080", "10.0.0.11:8080"),
        # An IPv6 address goes in brackets before the port, whether given bare or bracketed.
        ("2001:db8::11", 80, "[2001:db8::11]:80"),
        ("[2001:db8::11]", 8080, "[2001:db8::11]:8080"),
        ("::1", 80, "[::1]:80"),
        ("web1", 80, "web1:80"),
        ("web1.internal.example", 80, "web1.internal.example:80"),
        ("web1.internal.example.", 80, "web1.internal.example.:80"),
        ("xn--bcher-kva.example", 65535, "xn--bcher-kva.example:65535"),
    ],
)
def test_each_backend_gets_its_server_address_with_ipv6_in_brackets(address, port, server):
    result = inputs.check(
        {
            "role": "flask_gunicorn_lb",
            "backend_group": "web",
            "backends": [backend("web1", address, port)],
        }
    )
    assert result == {"backend_servers": {"web1": server}}


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("10.0.0.256", "is not an IPv4 address"),
        ("1.2.3", "is not an IPv4 address"),
        ("010.0.0.11", "is not an IPv4 address"),
        ("2001:db8::g", "is not an IPv6 address"),
        ("[10.0.0.11]", 'is not a host name: it has "[" in the label "[10"'),
        ("[2001:db8::zz]", "is not an IPv6 address in brackets"),
        ("web1\n", 'is not a host name: it has "\\n" in the label "web1\\n"'),
        ("web 1", 'is not a host name: it has " " in the label "web 1"'),
        ("web_1", 'is not a host name: it has "_" in the label "web_1"'),
        ("*.example.com", 'is not a host name: it has a "*"'),
        ("web1;", 'is not a host name: it has ";" in the label "web1;"'),
        ("", "is empty"),
    ],
)
def test_a_backend_address_nginx_cannot_take_is_refused_naming_the_backend(address, why):
    assert refusal(backend_group="web", backends=[backend("web1", address)]) == (
        'Backend "web1" of group "web": its flask_gunicorn_lb_backend_address (else ansible_host, '
        f"else the inventory name) {json.dumps(address)} {why}; it must be a host name, an IPv4 "
        "or an IPv6 address."
    )


@pytest.mark.parametrize("port", [0, 65536, 70000, -1, "80x", "80\n", "", True, None, 8.5])
def test_a_backend_port_outside_1_to_65535_is_refused(port):
    assert refusal(backend_group="web", backends=[backend(port=port)]) == (
        f'Backend "web1" of group "web": its flask_gunicorn_http_port {json.dumps(port)} must be '
        "a port from 1 to 65535."
    )


@pytest.mark.parametrize("name", ["web1\n", "-web1", "web/1", "web 1", "", None])
def test_a_backend_inventory_name_that_cannot_name_a_file_is_refused(name):
    message = refusal(backend_group="web", backends=[backend(name=name)])
    assert message.startswith(f'Backend of group "web": {json.dumps(name)} must be an inventory')
    assert refusal(role="flask_gunicorn_lb", backend=name or "").startswith(
        f"flask_gunicorn_lb_backend: {json.dumps(name or '')} must be an inventory name"
    )


def test_a_load_balancer_among_its_backends_listens_on_another_port():
    backends = [backend("lb1", "10.0.0.10", 80), backend("web1", "10.0.0.11", 80)]
    params = {"role": "flask_gunicorn_lb", "backend_group": "web", "backends": backends}
    assert refusal(**params, own_name="lb1", http_port=80) == (
        "lb1 is in its own backend group web: flask_gunicorn_lb_http_port must differ from its "
        "flask_gunicorn_http_port (both are 80), or requests would come back to the load balancer."
    )
    servers = inputs.check({**params, "own_name": "lb1", "http_port": "8080"})["backend_servers"]
    assert servers == {"lb1": "10.0.0.10:80", "web1": "10.0.0.11:80"}
    # A backend that is another host may listen on the load balancer's port.
    assert (
        inputs.check({**params, "own_name": "lb2", "http_port": 80})["backend_servers"] == servers
    )


@pytest.mark.parametrize("pool", ["Web", "1web", "web-1", "web\n", ""])
def test_a_pool_name_that_cannot_name_nginx_identifiers_is_refused(pool):
    assert refusal(role="flask_gunicorn_lb", pool=pool).startswith(
        f"flask_gunicorn_lb_name: {json.dumps(pool)} must start with a lowercase letter"
    )


@pytest.mark.parametrize(
    ("port", "accepted"),
    [
        (1, True),
        (443, True),
        ("8080", True),
        (65535, True),
        (0, False),
        (65536, False),
        ("80\n", False),
        (" 80", False),
        (True, False),
        ("http", False),
    ],
)
def test_ports_are_1_to_65535_named_by_the_role(port, accepted):
    for role, variable in [
        ("flask_gunicorn", "flask_gunicorn_https_port"),
        ("flask_gunicorn_lb", "flask_gunicorn_lb_https_port"),
    ]:
        if accepted:
            assert inputs.check({"role": role, "https_port": port}) == {}
        else:
            assert refusal(role=role, https_port=port) == (
                f"{variable}: {json.dumps(port)} must be a port from 1 to 65535."
            )


@pytest.mark.parametrize(
    ("prefix", "refused"),
    [
        ("/shop\n", "must be a path like /shop"),
        ("/shop/", "must be a path like /shop"),
        ("shop", "must be a path like /shop"),
        ("/shop//items", "must be a path like /shop"),
        ("/sh op", "must be a path like /shop"),
        ("/shop;", "must be a path like /shop"),
        ("/", "must be a path like /shop"),
        ("/.", 'has the path segment ".", which starts with a dot'),
        ("/..", 'has the path segment "..", which starts with a dot'),
        ("/apps/../shop", 'has the path segment "..", which starts with a dot'),
        ("/.well-known", 'has the path segment ".well-known", which starts with a dot'),
    ],
)
def test_a_url_prefix_nginx_would_not_route_to_the_app_is_refused(prefix, refused):
    assert refusal(url_prefix=prefix).startswith(
        f"flask_gunicorn_url_prefix: {json.dumps(prefix)} {refused}"
    )
    # The same rule when the module checks every URL path.
    assert refusal(url_prefix=prefix, health_path="/healthz").startswith(
        f"flask_gunicorn_url_prefix: {json.dumps(prefix)} {refused}"
    )


@pytest.mark.parametrize("prefix", ["", "/shop", "/apps/shop.v2", "/a~b/c-d_e", "/shop.well-known"])
def test_a_url_prefix_of_plain_segments_is_accepted(prefix):
    assert inputs.check({"url_prefix": prefix}) == {}
    result = inputs.check({"url_prefix": prefix, "static_dir": "static", "static_url_path": "/s/"})
    assert result == {}
    assert inputs.check(
        {
            "url_prefix": prefix,
            "static_dir": "static",
            "static_url_path": "/s/",
            "health_path": "/h",
        }
    ) == {"static_location": "/s/"}


@pytest.mark.parametrize(
    ("given", "paths"),
    [("/var/cache/app /tmp/x", ["/var/cache/app", "/tmp/x"]), (["/data"], ["/data"]), ([], [])],
)
def test_writable_paths_are_absolute_paths_as_a_list(given, paths):
    assert inputs.check({"writable_paths": given}) == {"writable_paths": paths}


@pytest.mark.parametrize("path", ["data", "/da ta", "/data\n", "", 5])
def test_writable_paths_that_are_not_absolute_paths_are_refused(path):
    assert refusal(writable_paths=[path]).startswith(
        f"flask_gunicorn_writable_paths: {json.dumps([path])} holds {json.dumps(path)}, which is "
        "not an absolute path without white space."
    )


@pytest.mark.parametrize(
    ("given", "paths"),
    [
        ("uploads media/images", ["uploads", "media/images"]),
        (["a..b", ".cache"], ["a..b", ".cache"]),
    ],
)
def test_shared_paths_are_relative_paths_inside_the_project_as_a_list(given, paths):
    assert inputs.check({"shared_paths": given}) == {"shared_paths": paths}


@pytest.mark.parametrize("path", ["/uploads", "..", "../up", "up/../..", "up/..", "up\n", "u p"])
def test_shared_paths_that_leave_the_project_are_refused(path):
    assert refusal(shared_paths=[path]).startswith(
        f"flask_gunicorn_shared_paths: {json.dumps([path])} holds {json.dumps(path)}, which is "
        "not a relative path inside the project."
    )


def test_every_refused_input_is_named_at_once_and_no_message_holds_an_apostrophe():
    message = refusal(
        server_name="example.com;",
        http_port=70000,
        trusted_proxies="10.0.0.300",
        url_prefix="/.git",
        health_path="/h",
        writable_paths="tmp",
        shared_paths="../x",
    )
    variables = re.findall(r"(?:^|\. )(flask_gunicorn_[a-z_]+): ", message)
    assert variables == [
        "flask_gunicorn_server_name",
        "flask_gunicorn_http_port",
        "flask_gunicorn_trusted_proxies",
        "flask_gunicorn_writable_paths",
        "flask_gunicorn_shared_paths",
        "flask_gunicorn_url_prefix",
    ]
    # Ansible shows the message in YAML, where an apostrophe would be doubled.
    assert "'" not in message


def test_no_refusal_message_holds_an_apostrophe():
    messages = [
        refusal(url_prefix="/.git"),
        refusal(url_prefix="shop"),
        refusal(static_dir="static", static_url_path="/", health_path="/h"),
        refusal(health_path="/h#x"),
        refusal(health_path="/a/../h"),
        refusal(health_path="/.env"),
        refusal(static_dir="static", static_url_path="/static", health_path="/static/h"),
        refusal(role="flask_gunicorn_lb", pool="Web", backend="-x"),
        refusal(backend_group="web", backends=[backend(address="a b")]),
        refusal(backend_group="web", backends=[backend(port=0)]),
        refusal(backend_group="web", backends=[backend("lb1")], own_name="lb1", http_port=80),
        refusal(server_name={"a": 1}),
    ]
    assert [message for message in messages if "'" in message] == []


def run_inputs(tmp_path, **args):
    return run_named("flask_gunicorn_inputs", tmp_path, **args)


def test_the_module_returns_the_normalised_inputs_in_check_mode_and_changes_nothing(tmp_path):
    result = run_inputs(
        tmp_path,
        _ansible_check_mode=True,
        server_name="example.com www.example.com.",
        http_port=80,
        https_port="443",
        trusted_proxies="[2001:db8::1] 10.0.0.0/8",
        url_prefix="/shop",
        static_url_path="/static",
        static_dir="static",
        health_path="/healthz",
        writable_paths=[],
        shared_paths="uploads",
    )
    assert result["changed"] is False and "failed" not in result
    assert result["server_names"] == ["example.com", "www.example.com"]
    assert result["trusted_proxies"] == ["2001:db8::1", "10.0.0.0/8"]
    assert result["writable_paths"] == [] and result["shared_paths"] == ["uploads"]
    assert result["static_location"] == "/static/"
    assert "backend_servers" not in result


def test_the_module_fails_naming_the_variable_and_the_value_as_written(tmp_path):
    result = run_inputs(
        tmp_path, server_name=["example.com; return 200"], health_path="/healthz", url_prefix=""
    )
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith(
        'flask_gunicorn_server_name: ["example.com; return 200"] holds "example.com; return 200", '
        'which has ";" in the label "com; return 200".'
    )
    result = run_inputs(tmp_path, url_prefix="/shop\n", health_path="/healthz")
    assert result["msg"].startswith('flask_gunicorn_url_prefix: "/shop\\n" must be a path')


def test_the_load_balancer_gets_its_server_names_and_server_addresses(tmp_path):
    result = run_inputs(
        tmp_path,
        role="flask_gunicorn_lb",
        pool="web",
        server_name="lb.example.com *.lb.example.com",
        http_port=80,
        backend_group="web",
        backends=[backend("web1", "2001:db8::11", 80), backend("web2", "10.0.0.12", "8080")],
        own_name="lb1",
    )
    assert result["changed"] is False
    assert result["server_names"] == ["lb.example.com", "*.lb.example.com"]
    assert result["backend_servers"] == {"web1": "[2001:db8::11]:80", "web2": "10.0.0.12:8080"}


def test_nginx_change_marks_the_reload_owed_before_it_changes_and_reports_a_mark_it_finds(conf):
    mark = conf.root / "reload-owed"
    change = {
        "files": [{"dest": str(conf.available / "site.conf"), "content": "server { new; }\n"}],
        "owed_mark": str(mark),
        "test_command": ACCEPT,
        "sites_enabled": str(conf.enabled),
    }
    owner = {"owner": pwd.getpwuid(UID).pw_name, "group": grp.getgrgid(GID).gr_name}
    change["files"][0].update(owner)
    made = run_named("flask_gunicorn_nginx_change", conf.root, **change)
    assert made["changed"] and made["reload_needed"] and mark.exists()
    assert mode(mark) == 0o600
    # The files are as wanted now; the mark alone still owes the reload (a killed run).
    again = run_named("flask_gunicorn_nginx_change", conf.root, **change)
    assert again["changed"] and again["reload_needed"] and again["changed_paths"] == []
    mark.unlink()
    assert not run_named("flask_gunicorn_nginx_change", conf.root, **change)["changed"]
    assert not mark.exists()
    # A refused change leaves the mark: the files were put back, a reload does no harm.
    change["test_command"] = REFUSE
    change["files"][0]["content"] = "server { bad; }\n"
    refused = run_named("flask_gunicorn_nginx_change", conf.root, **change)
    assert refused["failed"] and (conf.available / "site.conf").read_text() == "server { new; }\n"
    # A link in the mark's place is never followed.
    mark.unlink()
    mark.symlink_to(conf.outside / "target")
    change["test_command"] = ACCEPT
    linked = run_named("flask_gunicorn_nginx_change", conf.root, **change)
    assert (conf.outside / "target").read_text() == "never written\n"
    assert linked["changed"] and linked["reload_needed"]


ME = {"owner": pwd.getpwuid(UID).pw_name, "group": grp.getgrgid(GID).gr_name}


def test_files_creates_directories_and_files_then_changes_nothing(tmp_path):
    etc = tmp_path / "etc/hello"
    args = {
        "directories": [
            {"path": str(tmp_path / "etc"), **ME},
            {"path": str(etc), "mode": "0750", **ME},
        ],
        "files": [
            {
                "path": str(etc / "gunicorn.conf.py"),
                "content": "workers = 2\n",
                "mode": "0640",
                **ME,
            },
            {"path": str(etc / "app.env"), "secret_content": "TOKEN=hush\n", "mode": "0640", **ME},
        ],
        "_ansible_diff": True,
    }
    checked = run_named("flask_gunicorn_files", tmp_path, _ansible_check_mode=True, **args)
    assert checked["changed"] and not (tmp_path / "etc").exists()
    assert "hush" not in json.dumps(checked)
    made = run_named("flask_gunicorn_files", tmp_path, **args)
    assert made["changed_paths"] == [
        str(tmp_path / "etc"),
        str(etc),
        str(etc / "gunicorn.conf.py"),
        str(etc / "app.env"),
    ]
    assert "hush" not in json.dumps(made)
    assert mode(etc) == 0o750 and mode(etc / "app.env") == 0o640
    assert (etc / "app.env").read_text() == "TOKEN=hush\n"
    again = run_named("flask_gunicorn_files", tmp_path, **args)
    assert not again["changed"] and again["changed_paths"] == []
    # A mode changed by hand is put back; the content stays.
    os.chmod(etc / "gunicorn.conf.py", 0o666)
    assert run_named("flask_gunicorn_files", tmp_path, **args)["changed_paths"] == [
        str(etc / "gunicorn.conf.py")
    ]
    assert mode(etc / "gunicorn.conf.py") == 0o640


def test_files_makes_a_secret_key_once_and_replaces_an_empty_one(tmp_path):
    key = tmp_path / "secret_key.env"
    args = {"files": [{"path": str(key), "generate": "secret_key", "mode": "0640", **ME}]}
    run_named("flask_gunicorn_files", tmp_path, **args)
    made = key.read_text()
    assert re.fullmatch(r"SECRET_KEY=[0-9a-f]{64}\n", made) and mode(key) == 0o640
    assert not run_named("flask_gunicorn_files", tmp_path, **args)["changed"]
    assert key.read_text() == made
    key.write_text("")
    assert run_named("flask_gunicorn_files", tmp_path, **args)["changed"]
    assert re.fullmatch(r"SECRET_KEY=[0-9a-f]{64}\n", key.read_text()) and key.read_text() != made


def test_files_never_follows_a_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target").write_text("never written\n")
    (tmp_path / "conf").symlink_to(outside, target_is_directory=True)
    refused = run_named(
        "flask_gunicorn_files", tmp_path, directories=[{"path": str(tmp_path / "conf"), **ME}]
    )
    assert refused["failed"] and '"' + str(tmp_path / "conf") + '"' in refused["msg"]
    (tmp_path / "unit").symlink_to(outside / "target")
    replaced = run_named(
        "flask_gunicorn_files",
        tmp_path,
        files=[{"path": str(tmp_path / "unit"), "content": "[Unit]\n", **ME}],
    )
    assert replaced["changed"] and not os.path.islink(tmp_path / "unit")
    assert (outside / "target").read_text() == "never written\n"


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"content": "a", "generate": "secret_key"}, "needs one of content"),
        ({}, "needs one of content"),
        ({"content": "a", "mode": "rw"}, 'has mode "rw"'),
        ({"content": "a", "owner": "no-such-user-here"}, '"no-such-user-here"'),
    ],
)
def test_files_refuses_what_it_cannot_do_naming_the_path(tmp_path, entry, words):
    path = str(tmp_path / "f")
    result = run_named("flask_gunicorn_files", tmp_path, files=[{"path": path, **ME, **entry}])
    assert result["failed"] and words in result["msg"] and json.dumps(path) in result["msg"]
    assert not os.path.exists(path)


@pytest.fixture
def release(tmp_path):
    """A release being built: its source ships an instance folder, and a link leading out."""
    root = tmp_path / "srv/hello"
    source = root / "releases/r1/src"
    (source / "hello/instance").mkdir(parents=True)
    (source / "hello/instance/local.db").write_text("a developer's database\n")
    (root / "shared/instance").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "uploads").write_text("never removed\n")
    (source / "data").symlink_to(outside, target_is_directory=True)
    return SimpleNamespace(root=root, dir=root / "releases/r1", source=source, outside=outside)


def links_args(release, instance_path, shared_paths=()):
    return {
        "release_dir": str(release.dir),
        "shared_dir": str(release.root / "shared"),
        "instance_path": instance_path,
        "shared_paths": list(shared_paths),
    }


def test_release_links_replace_the_shipped_instance_folder_and_make_missing_parents(release):
    args = links_args(release, str(release.source / "hello/instance"), ["media/uploads"])
    checked = run_named(
        "flask_gunicorn_release_links", release.root, _ansible_check_mode=True, **args
    )
    assert checked["changed"] and (release.source / "hello/instance/local.db").exists()
    made = run_named("flask_gunicorn_release_links", release.root, **args)
    assert made["changed"] and len(made["links"]) == 2
    assert os.readlink(release.source / "hello/instance") == str(release.root / "shared/instance")
    assert os.readlink(release.source / "media/uploads") == str(
        release.root / "shared/media/uploads"
    )
    assert mode(release.source / "media") == 0o755


@pytest.mark.parametrize(
    "instance_path",
    [
        "{src}/../../../etc/instance",
        "{src}/./instance",
        "{src}//instance",
        "relative/instance",
        "{root}/shared/instance",
        "{src}/data/instance",
        "{src}/instance\nx",
        "{dir}",
    ],
)
def test_release_links_refuse_an_instance_folder_not_plainly_inside_the_release(
    release, instance_path
):
    path = instance_path.format(src=release.source, root=release.root, dir=release.dir)
    result = run_named("flask_gunicorn_release_links", release.root, **links_args(release, path))
    assert result["failed"] and json.dumps(path) in result["msg"]
    assert (release.source / "hello/instance/local.db").exists()
    assert (release.outside / "uploads").read_text() == "never removed\n"


@pytest.mark.parametrize("shared_path", ["data/uploads", "../uploads", "/etc", "a/./b", ""])
def test_release_links_refuse_a_shared_path_through_a_shipped_link_or_not_plain(
    release, shared_path
):
    args = links_args(release, str(release.source / "hello/instance"), [shared_path])
    result = run_named("flask_gunicorn_release_links", release.root, **args)
    assert result["failed"] and json.dumps(shared_path) in result["msg"]
    # Refused before anything changed: not even the instance folder was replaced.
    assert (release.source / "hello/instance/local.db").exists()
    assert (release.outside / "uploads").read_text() == "never removed\n"


unit_states = load("flask_gunicorn_unit_states")


def test_unit_states_parse_systemctl_show_in_the_order_asked():
    output = (
        "Id=nginx.service\nLoadState=loaded\nActiveState=active\nUnitFileState=enabled\n\n"
        "Id=hello.socket\nLoadState=loaded\nActiveState=active\nUnitFileState=disabled\n\n"
        "Id=hello.service\nLoadState=not-found\nActiveState=inactive\nUnitFileState=\n"
    )
    states = unit_states.parse_show(output, ["nginx.service", "hello.socket", "hello.service"])
    assert states["hello.service"] == {
        "LoadState": "not-found",
        "ActiveState": "inactive",
        "UnitFileState": "",
        "NeedDaemonReload": "",
    }
    assert [unit_states.running_at_boot(state) for state in states.values()] == [
        True,
        False,
        False,
    ]


def test_unit_states_count_only_a_socket_file_never_a_link_to_one(tmp_path):
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "app.sock"))
    (tmp_path / "link.sock").symlink_to(tmp_path / "app.sock")
    (tmp_path / "file.sock").write_text("")
    assert [
        unit_states.socket_file(str(tmp_path / name)) for name in ("app.sock", "link.sock")
    ] == [
        True,
        False,
    ]
    assert not unit_states.socket_file(str(tmp_path / "file.sock"))
    assert not unit_states.socket_file(str(tmp_path / "missing.sock"))
    listening.close()


def test_files_makes_a_missing_account_with_its_own_group():
    commands = files_module.account_commands(
        "no-such-user-fg", "no-such-group-fg", "flask_gunicorn app x", "/srv/x", "/usr/sbin/nologin"
    )
    assert commands == [
        ["groupadd", "--system", "no-such-group-fg"],
        [
            *("useradd", "--system", "--gid", "no-such-group-fg"),
            *("--comment", "flask_gunicorn app x", "--home-dir", "/srv/x", "--no-create-home"),
            *("--shell", "/usr/sbin/nologin", "no-such-user-fg"),
        ],
    ]


def test_files_corrects_only_what_differs_in_an_existing_account():
    me = pwd.getpwuid(UID)
    group = grp.getgrgid(me.pw_gid).gr_name
    assert (
        files_module.account_commands(me.pw_name, group, me.pw_gecos, me.pw_dir, me.pw_shell) == []
    )
    assert files_module.account_commands(
        me.pw_name, group, "flask_gunicorn app x", me.pw_dir, "/usr/sbin/nologin"
    ) == [
        ["usermod", "--comment", "flask_gunicorn app x", "--shell", "/usr/sbin/nologin", me.pw_name]
    ]


def test_files_makes_the_app_directories_last_and_reports_them(tmp_path):
    shared = tmp_path / "srv/shared"
    result = run_named(
        "flask_gunicorn_files",
        tmp_path,
        directories=[{"path": str(tmp_path / "srv"), **ME}],
        app_directories={"root": str(shared), "paths": ["instance"], **ME},
    )
    assert result["changed_paths"] == [str(tmp_path / "srv"), str(shared), f"{shared}/instance"]
    assert mode(shared / "instance") == 0o750
    again = run_named(
        "flask_gunicorn_files",
        tmp_path,
        directories=[{"path": str(tmp_path / "srv"), **ME}],
        app_directories={"root": str(shared), "paths": ["instance"], **ME},
    )
    assert again["changed_paths"] == [] and not again["changed"]


def test_installed_names_the_packages_dpkg_does_not_list_as_installed():
    installed = load("flask_gunicorn_installed")
    output = "nginx installed\ncurl config-files\nlibc6:amd64 installed\npython3-apt unknown\n"
    wanted = ["nginx", "curl", "openssl", "libc6", "python3-apt"]
    assert installed.not_installed(wanted, output) == ["curl", "openssl", "python3-apt"]


virtualenv = load("flask_gunicorn_virtualenv")


class RecordingBuilder:
    """Builds a virtualenv's skeleton (a script naming its own path), recording each pip call."""

    def __init__(self):
        self.calls = []

    def python_version(self, python):
        return "3.11.2"

    def build(self, python, path, source):
        self.calls.append("venv")
        os.makedirs(f"{path}/bin")
        os.symlink(python, f"{path}/bin/python")
        Path(f"{path}/pyvenv.cfg").write_text(
            f"home = /usr/bin\ncommand = {python} -m venv {path}\n"
        )
        Path(f"{path}/bin/flask").write_text(f"#!{path}/bin/python\nimport flask\n")

    def pip(self, path, what, *arguments):
        self.calls.append(" ".join(arguments))
        if arguments[-1] == "gunicorn":
            Path(f"{path}/bin/gunicorn").write_text(f"#!{path}/bin/python\n")


def venv_release(tmp_path, name, requirements="flask==3.1.3\n", project=True):
    source = tmp_path / "releases" / name / "src"
    source.mkdir(parents=True)
    (source / "requirements.txt").write_text(requirements)
    if project:
        (source / "pyproject.toml").write_text("[project]\nname = 'hello'\nversion = '1'\n")
    return {
        "path": str(source.parent / "venv"),
        "source": str(source),
        "python": "/usr/bin/python3",
        "gunicorn_requirement": "gunicorn",
        "releases_dir": str(tmp_path / "releases"),
    }


def test_virtualenv_is_built_then_copied_for_a_code_only_change(tmp_path):
    first, builder = venv_release(tmp_path, "a"), RecordingBuilder()
    key, reused = virtualenv.make(builder, first)
    assert reused == "" and builder.calls == ["venv", first["source"], "gunicorn"]
    (tmp_path / "releases/a/.complete").write_text("release=a\n")

    second, builder = venv_release(tmp_path, "b"), RecordingBuilder()
    (Path(second["source"]) / "app.py").write_text("changed code\n")
    assert virtualenv.make(builder, second) == (key, first["path"])
    # Only the project again, over the copy of the earlier build of the same version.
    assert builder.calls == [f"--no-deps --force-reinstall {second['source']}"]
    assert (
        Path(second["path"], "bin/flask").read_text().startswith(f"#!{second['path']}/bin/python")
    )
    assert first["path"] not in Path(second["path"], "pyvenv.cfg").read_text()
    assert os.readlink(Path(second["path"], "bin/python")) == "/usr/bin/python3"
    # The earlier release's virtualenv is untouched.
    assert Path(first["path"], "bin/flask").read_text().startswith(f"#!{first['path']}/bin/python")


@pytest.mark.parametrize(
    "change",
    [
        {"requirements": "flask==3.1.2\n"},
        {"project": False},
    ],
)
def test_virtualenv_is_built_again_when_what_decides_its_packages_differs(tmp_path, change):
    virtualenv.make(RecordingBuilder(), venv_release(tmp_path, "a"))
    (tmp_path / "releases/a/.complete").write_text("release=a\n")
    builder = RecordingBuilder()
    assert virtualenv.make(builder, venv_release(tmp_path, "b", **change))[1] == ""
    assert builder.calls[0] == "venv"


def test_virtualenv_of_a_release_never_completed_or_a_link_is_never_reused(tmp_path):
    virtualenv.make(RecordingBuilder(), venv_release(tmp_path, "failed"))
    (tmp_path / "elsewhere").mkdir()
    shutil.copytree(tmp_path / "releases/failed", tmp_path / "elsewhere/linked")
    (tmp_path / "elsewhere/linked/.complete").write_text("release=linked\n")
    (tmp_path / "releases/linked").symlink_to(tmp_path / "elsewhere/linked")
    builder = RecordingBuilder()
    assert virtualenv.make(builder, venv_release(tmp_path, "b"))[1] == ""
    assert builder.calls[0] == "venv"


def test_virtualenv_refuses_a_path_that_exists(tmp_path):
    params = venv_release(tmp_path, "a")
    os.makedirs(params["path"])
    with pytest.raises(virtualenv.Failed, match="exists already"):
        virtualenv.make(RecordingBuilder(), params)


def test_virtualenv_names_the_step_that_failed_with_its_own_words(tmp_path):
    class Module:
        def run_command(self, argv):
            return 1, "", "ERROR: No matching distribution found for flask==9\n"

    with pytest.raises(
        virtualenv.Failed, match=r"Installing the pinned requirements failed.*flask==9"
    ):
        virtualenv.Builder(Module()).pip("/v", "Installing the pinned requirements", "-r", "r.txt")


def test_releases_plan_says_whether_the_release_is_complete_and_history_or_pruning_owed(tmp_path):
    releases_module = load("flask_gunicorn_releases")
    releases = tmp_path / "releases"
    for name in ("aaa", "bbb", "ccc"):
        (releases / name).mkdir(parents=True)
        (releases / name / ".complete").write_text(f"release={name}\n")
    history = tmp_path / "history"
    history.write_text("aaa\nbbb\nccc\n")
    (tmp_path / "current").symlink_to(releases / "ccc")

    def plan(release, keep):
        return releases_module.plan(
            str(history), str(releases), str(tmp_path / "current"), release, keep
        )

    assert plan("ccc", 5) == (True, False)
    # Lowered keep_releases, a new release, a failed build left behind: each is owed.
    assert plan("ccc", 2) == (True, True)
    assert plan("ddd", 5) == (False, True)
    (releases / "failed").mkdir()
    assert plan("ccc", 5) == (True, True)


def test_the_action_plugin_runs_controller_modules_in_ansibles_own_process(tmp_path):
    """A real ansible-playbook run: the modules' answers and refusals come back through the action
    plugin, and the lock's owner is that ansible-playbook process itself."""
    inputs_args = {
        "http_port": 80,
        "https_port": 443,
        "trusted_proxies": [],
        "url_prefix": "",
        "health_path": "/healthz",
        "writable_paths": [],
        "shared_paths": [],
    }
    answers = tmp_path / "answers.json"
    tasks = [
        {"flask_gunicorn_lock": {"state": "owner"}, "register": "owner"},
        {
            "flask_gunicorn_inputs": {"server_name": "example.com. www.example.com", **inputs_args},
            "register": "inputs",
        },
        {
            "ansible.builtin.copy": {
                "dest": str(answers),
                "content": "{{ {'owner': owner.owner, 'names': inputs.server_names} | to_json }}",
            }
        },
        {"flask_gunicorn_inputs": {"server_name": "bad_name!", **inputs_args}},
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}])
    )
    environment = {
        **os.environ,
        "ANSIBLE_ACTION_PLUGINS": str(MODULES.parent / "action"),
        "ANSIBLE_LIBRARY": str(MODULES),
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,"]
    with subprocess.Popen(
        [*command, "-c", "local", str(playbook)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment,
    ) as run:  # fmt: skip
        output = run.communicate()[0]
    assert run.returncode == 2, output
    assert answers.exists(), output
    found = json.loads(answers.read_text())
    assert found["owner"].split(":")[:2] == [socket.gethostname(), str(run.pid)]
    assert found["names"] == ["example.com", "www.example.com"]
    assert "bad_name!" in output


def test_the_deploy_log_is_appended_to_and_lists_each_releases_last_time_live(tmp_path):
    releases_dir = tmp_path / "releases"
    for release in ("r1", "r2"):
        (releases_dir / release).mkdir(parents=True)
        (releases_dir / release / ".complete").write_text("")
    (tmp_path / "history").write_text("r1\nr2\n")
    (tmp_path / "current").symlink_to(releases_dir / "r2")
    log = str(tmp_path / "deploys.log")
    releases.append_log(log, {"release": "r1", "action": "deploy", "commit": "abc"})
    releases.append_log(log, {"release": "r2", "action": "deploy", "user": "ann"})
    with open(log, "a") as handle:
        handle.write("not json\n")
    listed = releases.list_releases(
        str(tmp_path / "history"), str(releases_dir), str(tmp_path / "current"), log
    )
    assert [(r["id"], r["serving"], r["commit"], r["user"]) for r in listed] == [
        ("r1", False, "abc", ""),
        ("r2", True, "", "ann"),
    ]


def test_the_deploy_log_is_never_written_through_a_link(tmp_path):
    (tmp_path / "target").write_text("")
    (tmp_path / "deploys.log").symlink_to(tmp_path / "target")
    with pytest.raises(releases.Refused):
        releases.append_log(str(tmp_path / "deploys.log"), {"release": "r1"})
    assert (tmp_path / "target").read_text() == ""


def test_record_and_prune_appends_the_deploy_log_entry_only_when_one_is_given(tmp_path):
    releases_dir = tmp_path / "releases"
    (releases_dir / "r1").mkdir(parents=True)
    (releases_dir / "r1" / ".complete").write_text("")
    (tmp_path / "current").symlink_to(releases_dir / "r1")
    args = {
        "state": "record_and_prune",
        "history_file": str(tmp_path / "history"),
        "releases_dir": str(releases_dir),
        "current_link": str(tmp_path / "current"),
        "release": "r1",
        "log_file": str(tmp_path / "deploys.log"),
    }
    went_live = run_named("flask_gunicorn_releases", tmp_path, entry={"action": "deploy"}, **args)
    assert went_live["changed"] and json.loads(went_live["logged"])["release"] == "r1"
    # A run that changed nothing gives no entry: nothing is appended, nothing changes.
    unchanged = run_named("flask_gunicorn_releases", tmp_path, **args)
    assert not unchanged["changed"] and unchanged["logged"] == ""
    lines = (tmp_path / "deploys.log").read_text().splitlines()
    assert [json.loads(line)["action"] for line in lines] == ["deploy"]
    # A second go-live of the same release (a configuration change) is logged, the history kept.
    again = run_named("flask_gunicorn_releases", tmp_path, entry={"action": "deploy"}, **args)
    assert again["changed"] and again["history"] == ["r1"]
    assert len((tmp_path / "deploys.log").read_text().splitlines()) == 2


ACME = {
    "server_name": ["example.com", "www.example.com"],
    "tls_certificate_source": "acme",
    "tls_enabled": True,
    "acme_email": "admin@example.com",
    "acme_directory_url": "https://acme-v02.api.letsencrypt.org/directory",
}


def test_acme_settings_that_fit_pass_and_the_challenge_location_serves_the_webroot():
    result = inputs.check({**ACME, "acme_email": "", "acme_webroot": "/var/lib/acme-webroot"})
    assert result["server_names"] == ["example.com", "www.example.com"]
    location = result["acme_challenge_location"]
    assert "location ^~ /.well-known/acme-challenge/ {" in location
    assert "    root /var/lib/acme-webroot;\n" in location


@pytest.mark.parametrize(
    ("change", "refused"),
    [
        ({"tls_enabled": False}, "needs flask_gunicorn_tls_enabled true (got false)"),
        ({"server_name": []}, "server names to certify in flask_gunicorn_server_name"),
        ({"server_name": ["*.example.com"]}, 'holds the wildcard "*.example.com"'),
        ({"acme_email": "admin"}, "flask_gunicorn_acme_email must be an email address or empty"),
        ({"acme_directory_url": "http://acme.test/dir"}, "must be an https:// URL"),
        ({"tls_certificate": "site.pem"}, "makes its own certificate: leave"),
        ({"tls_certificate_source": "files", "tls_certificate": ""}, '"files" needs'),
        ({"acme_webroot": "var/acme"}, 'The ACME webroot "var/acme" is not an absolute path'),
        ({"acme_webroot": "/var/acme; root /"}, "is not an absolute path"),
    ],
)
def test_acme_settings_that_do_not_fit_are_refused(change, refused):
    assert refused in refusal(**{**ACME, **change})


def test_other_certificate_sources_ignore_the_acme_settings():
    ignored = {"acme_email": "admin", "acme_directory_url": "", "server_name": []}
    result = inputs.check({**ACME, **ignored, "tls_certificate_source": "self_signed"})
    assert result == {"server_names": [], "tls_settings": inputs.TLS_SETTINGS}
    given = {**ACME, "tls_certificate_source": "files", "tls_certificate": "site.pem"}
    assert inputs.check(given)["server_names"] == ["example.com", "www.example.com"]


# flask_gunicorn_inputs: TLS settings, security headers, certificate files, allowed clients and
# catch-all servers, written once for both roles.


def make_pair(tmp_path, name, cn="example.com"):
    """A self-signed certificate and its key, made by openssl as the roles would be given them."""
    certificate, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(certificate)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return str(certificate), str(key)


def files_params(certificate, key, role="flask_gunicorn_lb"):
    return {
        "role": role,
        "tls_enabled": True,
        "tls_certificate_source": "files",
        "tls_certificate": certificate,
        "tls_certificate_key": key,
    }


def test_a_certificate_and_its_own_key_are_accepted(tmp_path):
    certificate, key = make_pair(tmp_path, "site")
    assert "tls_settings" in inputs.check(files_params(certificate, key))


def test_a_missing_certificate_is_refused_naming_the_variable(tmp_path):
    _, key = make_pair(tmp_path, "site")
    message = refusal(**files_params(str(tmp_path / "missing.crt"), key))
    assert message.startswith("flask_gunicorn_lb_tls_certificate: ")
    assert "missing.crt" in message and "cannot be read" in message


def test_a_file_that_is_no_certificate_is_refused(tmp_path):
    _, key = make_pair(tmp_path, "site")
    bogus = tmp_path / "bogus.crt"
    bogus.write_text("not a certificate\n")
    message = refusal(**files_params(str(bogus), key, role="flask_gunicorn"))
    assert (
        message.startswith("flask_gunicorn_tls_certificate: ") and "no PEM certificate" in message
    )


def test_a_key_of_another_certificate_is_refused_without_showing_it(tmp_path):
    certificate, _ = make_pair(tmp_path, "site")
    _, other_key = make_pair(tmp_path, "other")
    message = refusal(**files_params(certificate, other_key))
    assert message.startswith("flask_gunicorn_lb_tls_certificate_key: ")
    assert "is not the key of the first certificate" in message
    assert "PRIVATE KEY" not in message


def test_a_certificate_where_the_key_should_be_is_refused(tmp_path):
    certificate, _ = make_pair(tmp_path, "site")
    message = refusal(**files_params(certificate, certificate))
    assert (
        message.startswith("flask_gunicorn_lb_tls_certificate_key: ")
        and "no unencrypted" in message
    )


def test_files_are_not_read_with_tls_off():
    params = files_params("/nonexistent.crt", "/nonexistent.key")
    assert inputs.check({**params, "tls_enabled": False}) == {}


def test_both_roles_get_the_same_tls_settings_only_with_tls():
    web = inputs.check({"tls_enabled": True})["tls_settings"]
    lb = inputs.check({"role": "flask_gunicorn_lb", "tls_enabled": True})["tls_settings"]
    assert web == lb
    assert "ssl_protocols TLSv1.2 TLSv1.3;\n" in web and "ssl_session_tickets off;\n" in web
    assert "tls_settings" not in inputs.check({"tls_enabled": False})


def test_security_headers_are_sorted_with_hsts_last_only_with_tls():
    headers = {"X-Frame-Options": "DENY", "Content-Security-Policy": "frame-ancestors 'none'"}
    with_tls = inputs.check({"security_headers": headers, "hsts_max_age": 600, "tls_enabled": True})
    assert with_tls["security_header_lines"] == [
        "add_header Content-Security-Policy \"frame-ancestors 'none'\" always;",
        'add_header X-Frame-Options "DENY" always;',
        'add_header Strict-Transport-Security "max-age=600" always;',
    ]
    assert with_tls["security_headers"][-1] == {
        "name": "Strict-Transport-Security",
        "value": "max-age=600",
    }
    without = inputs.check({"security_headers": headers, "hsts_max_age": 600})
    assert len(without["security_header_lines"]) == 2
    no_hsts = inputs.check({"security_headers": {}, "hsts_max_age": 0, "tls_enabled": True})
    assert no_hsts["security_header_lines"] == []


@pytest.mark.parametrize(
    ("headers", "age", "start"),
    [
        ({"X Frame": "DENY"}, 0, 'flask_gunicorn_lb_security_headers: {"X Frame": "DENY"} holds'),
        ({"X-A": 'a"b'}, 0, "flask_gunicorn_lb_security_headers: "),
        ({"X-A": "a\nadd_header X-B c"}, 0, "flask_gunicorn_lb_security_headers: "),
        (["X-A"], 0, 'flask_gunicorn_lb_security_headers: ["X-A"] must be a mapping'),
        ({}, -1, "flask_gunicorn_lb_hsts_max_age: -1 must be a number"),
    ],
)
def test_headers_nginx_would_misread_are_refused(headers, age, start):
    message = refusal(role="flask_gunicorn_lb", security_headers=headers, hsts_max_age=age)
    assert message.startswith(start)


def test_allowed_clients_follow_the_trusted_proxies_rules_and_name_their_variable():
    assert inputs.check({"allowed_clients": "10.0.0.10 [2001:db8::1] 10.1.0.0/16"}) == {
        "allowed_clients": ["10.0.0.10", "2001:db8::1", "10.1.0.0/16"]
    }
    assert inputs.check({"allowed_clients": []}) == {"allowed_clients": []}
    message = refusal(allowed_clients=["10.0.0.10", "lb.example.com"])
    assert message.startswith('flask_gunicorn_allowed_clients: ["10.0.0.10", "lb.example.com"]')


def catch_all(**spec):
    base = {"http_port": 80, "acme_snippet": "/etc/nginx/snippets/acme.conf"}
    return inputs.check({"catch_all": {**base, **spec}})["catch_all"]


def test_the_http_catch_all_closes_unknown_names_but_answers_acme():
    text = catch_all()
    assert "listen 80 default_server;" in text and "return 444;" in text
    assert "include /etc/nginx/snippets/acme.conf;" in text
    assert "ssl" not in text


def test_the_https_catch_all_refuses_the_handshake_or_shows_the_given_certificate():
    refusing = catch_all(https_port=8443, tls_settings_file="/etc/nginx/snippets/tls.conf")
    assert "listen 8443 ssl default_server;" in refusing
    assert "ssl_reject_handshake on;" in refusing and "ssl_certificate" not in refusing
    assert "include /etc/nginx/snippets/tls.conf;" in refusing
    old_nginx = catch_all(
        https_port=443,
        tls_settings_file="/t.conf",
        certificate={"certificate": "/c.pem", "key": "/k.pem"},
    )
    assert "ssl_reject_handshake on;" not in old_nginx
    assert "ssl_certificate /c.pem;" in old_nginx and "ssl_certificate_key /k.pem;" in old_nginx


def run_self_signed(tmp_path, **args):
    return run_named("flask_gunicorn_self_signed", tmp_path, **args)


def test_self_signed_makes_a_pair_once_for_all_names_with_a_private_key(tmp_path):
    certificate, key = tmp_path / "certificate.pem", tmp_path / "key.pem"
    args = {"certificate": str(certificate), "key": str(key), "names": ["a.test", "*.b.test"]}
    checked = run_self_signed(tmp_path, _ansible_check_mode=True, **args)
    assert checked["changed"] is True and not certificate.exists() and not key.exists()
    first = run_self_signed(tmp_path, **args)
    assert first["changed"] is True and "failed" not in first
    assert mode(key) == 0o600
    text = subprocess.run(
        ["openssl", "x509", "-noout", "-text", "-in", str(certificate)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "DNS:a.test, DNS:*.b.test" in text and "CN = a.test" in text
    made = certificate.read_bytes()
    second = run_self_signed(tmp_path, **args)
    assert second["changed"] is False and certificate.read_bytes() == made
    assert sorted(path.name for path in tmp_path.iterdir()) == ["certificate.pem", "key.pem"]


def test_self_signed_leaves_nothing_behind_when_openssl_fails(tmp_path):
    certificate, key = tmp_path / "certificate.pem", tmp_path / "key.pem"
    result = run_self_signed(tmp_path, certificate=str(certificate), key=str(key), names=["a/b"])
    assert result.get("failed") is True and "openssl failed" in result["msg"]
    assert list(tmp_path.iterdir()) == []
