"""Unit tests of the role's modules (plugins/modules), on real files in a temporary directory."""

import importlib.util
import json
import os
import re
import socket
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

MODULES = Path(__file__).resolve().parents[1] / "plugins/modules"


def load(name):
    spec = importlib.util.spec_from_file_location(name, MODULES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app_dirs = load("flask_gunicorn_app_dirs")
instance = load("flask_gunicorn_instance")
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
    changed, created = app_dirs.ensure_dirs(
        str(root), ["instance", "uploads/images"], UID, GID, 0o750
    )
    assert changed
    assert created == [str(root), f"{root}/instance", f"{root}/uploads", f"{root}/uploads/images"]
    assert all(mode(path) == 0o750 for path in created)
    assert app_dirs.ensure_dirs(str(root), ["instance", "uploads/images"], UID, GID, 0o750) == (
        False,
        [],
    )


def test_sets_the_mode_of_an_existing_directory(area):
    root, _ = area
    (root / "instance").mkdir(parents=True, mode=0o777)
    os.chmod(root / "instance", 0o777)
    changed, created = app_dirs.ensure_dirs(str(root), ["instance"], UID, GID, 0o750)
    assert changed and f"{root}/instance" not in created
    assert mode(root / "instance") == 0o750


@pytest.mark.parametrize("planted", ["instance", "uploads"])
def test_a_planted_link_is_refused_and_its_target_untouched(area, planted):
    root, outside = area
    root.mkdir()
    (root / planted).symlink_to(outside)
    with pytest.raises(app_dirs.PlantedLinkError, match=f"{root}/{planted} is a symbolic link"):
        app_dirs.ensure_dirs(str(root), ["instance", "uploads/images"], UID, GID, 0o755)
    assert mode(outside) == 0o700
    assert sorted(os.listdir(outside)) == ["file"]


def test_a_planted_link_in_place_of_the_root_is_refused(area):
    root, outside = area
    root.symlink_to(outside)
    with pytest.raises(app_dirs.PlantedLinkError, match=f"{root} is a symbolic link"):
        app_dirs.ensure_dirs(str(root), [], UID, GID, 0o755)
    assert mode(outside) == 0o700


def test_a_file_in_place_of_a_directory_is_refused(area):
    root, _ = area
    root.mkdir()
    (root / "instance").write_text("")
    with pytest.raises(app_dirs.PlantedLinkError, match="exists and is not a directory"):
        app_dirs.ensure_dirs(str(root), ["instance"], UID, GID, 0o750)


@pytest.mark.parametrize("path", ["../escape", "a/../../escape", "/absolute", "a/./b"])
def test_paths_that_leave_the_area_are_refused(area, path):
    root, _ = area
    with pytest.raises(ValueError, match="relative path"):
        app_dirs.ensure_dirs(str(root), [path], UID, GID, 0o750)


def test_check_mode_reports_and_creates_nothing(area):
    root, _ = area
    changed, created = app_dirs.ensure_dirs(
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


def test_the_previous_site_comes_from_the_instances_own_record(tmp_path):
    assert instance.previous_site(instance.own_record(str(tmp_path), "hello")) == ""
    (tmp_path / "hello.json").write_text(json.dumps({"site": "_default"}))
    (tmp_path / "other.json").write_text(json.dumps({"site": "other.example.test"}))
    assert instance.previous_site(instance.own_record(str(tmp_path), "hello")) == "_default"


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
