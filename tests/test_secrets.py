"""The shared secrets' lookup (plugins/lookup/flask_gunicorn_secret.py) and the inventory filters
(plugins/filter/flask_gunicorn_hosts.py): real files, real processes, no mocks."""

import importlib.util
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from ansible.errors import AnsibleError

ROOT = Path(__file__).resolve().parents[1]


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


secret = load("plugins/lookup/flask_gunicorn_secret.py", "flask_gunicorn_secret")
hosts = load("plugins/filter/flask_gunicorn_hosts.py", "flask_gunicorn_hosts")


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def loose_umask():
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_new_secret_is_made_once_in_a_private_directory_and_file(tmp_path, loose_umask):
    directory = tmp_path / "inventory" / "secrets"
    value = secret.shared_secret(str(directory), "hello", "secret_key")
    assert len(value) == 64 and int(value, 16) >= 0
    assert mode(directory) == 0o700
    assert mode(directory / "hello") == 0o700
    assert mode(directory / "hello" / "secret_key") == 0o600
    assert (directory / "hello" / "secret_key").read_text() == value + "\n"
    assert secret.shared_secret(str(directory), "hello", "secret_key") == value
    assert os.listdir(directory / "hello") == ["secret_key"]


def test_each_app_and_name_has_its_own_secret(tmp_path):
    values = {
        secret.shared_secret(str(tmp_path), app, name)
        for app in ("hello", "shop")
        for name in ("secret_key", "postgresql_password")
    }
    assert len(values) == 4


def test_a_file_there_is_read_and_kept_and_loose_modes_are_tightened(tmp_path, loose_umask):
    (tmp_path / "hello").mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    given = tmp_path / "hello" / "postgresql_password"
    given.write_text("written by hand\n")
    os.chmod(given, 0o644)
    assert secret.shared_secret(str(tmp_path), "hello", "postgresql_password") == "written by hand"
    assert given.read_text() == "written by hand\n"
    assert (mode(tmp_path), mode(tmp_path / "hello"), mode(given)) == (0o700, 0o700, 0o600)


def test_a_given_value_wins_and_leaves_no_file(tmp_path):
    given = {"hello": {"secret_key": "from the vault"}}
    assert secret.shared_secret(str(tmp_path), "hello", "secret_key", given) == "from the vault"
    assert not (tmp_path / "hello").exists()
    # Another app or name is not given: it comes from the directory.
    assert secret.shared_secret(str(tmp_path), "shop", "secret_key", given) != "from the vault"
    # An empty value is not a value.
    empty = {"hello": {"secret_key": ""}}
    assert len(secret.shared_secret(str(tmp_path), "hello", "secret_key", empty)) == 64


def _one_call(arguments):
    directory, start = arguments
    start.wait()
    return secret.shared_secret(directory, "hello", "secret_key")


def test_calls_at_once_from_many_processes_all_get_the_same_value(tmp_path):
    # As Ansible's forks do: one call per host, at the same moment, in separate processes.
    with multiprocessing.Manager() as manager:
        start = manager.Event()
        with multiprocessing.Pool(8) as pool:
            result = pool.map_async(_one_call, [(str(tmp_path), start)] * 32)
            start.set()
            values = result.get(timeout=60)
    assert len(set(values)) == 1
    assert os.listdir(tmp_path / "hello") == ["secret_key"]
    assert (tmp_path / "hello" / "secret_key").read_text() == values[0] + "\n"


def test_an_empty_file_is_refused_naming_it_not_replaced(tmp_path):
    (tmp_path / "hello").mkdir()
    (tmp_path / "hello" / "secret_key").write_text("\n")
    with pytest.raises(secret.SecretError, match="secret_key is empty"):
        secret.shared_secret(str(tmp_path), "hello", "secret_key")


def test_a_link_in_place_of_the_file_is_not_followed(tmp_path):
    (tmp_path / "hello").mkdir()
    (tmp_path / "elsewhere").write_text("not a secret\n")
    (tmp_path / "hello" / "secret_key").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(secret.SecretError, match="cannot be read"):
        secret.shared_secret(str(tmp_path), "hello", "secret_key")


@pytest.mark.parametrize(
    "app, name", [("../etc", "x"), ("hello", "../x"), (".hidden", "x"), ("hello", "")]
)
def test_names_that_would_leave_the_directory_are_refused(tmp_path, app, name):
    with pytest.raises(secret.SecretError, match="it names a file"):
        secret.shared_secret(str(tmp_path), app, name)
    assert os.listdir(tmp_path) == []


def test_the_lookup_returns_one_value_per_term_and_names_no_value_in_errors(tmp_path):
    # Through Ansible's plugin loader, which reads the options from DOCUMENTATION.
    from ansible.plugins.loader import lookup_loader

    lookup_loader.add_directory(str(ROOT / "plugins/lookup"))
    lookup = lookup_loader.get("flask_gunicorn_secret")
    first = lookup.run(
        ["secret_key", "postgresql_password"], {}, app="hello", directory=str(tmp_path)
    )
    again = lookup.run(
        ["secret_key", "postgresql_password"], {}, app="hello", directory=str(tmp_path)
    )
    assert first == again and len(set(first)) == 2
    with pytest.raises(AnsibleError, match=r"flask_gunicorn_secret: the app '\.\./x'"):
        lookup.run(["secret_key"], {}, app="../x", directory=str(tmp_path))


# --- The inventory filters.

HOSTVARS = {
    "web1": {"flask_gunicorn_lb_backend_address": "10.0.0.11", "ansible_host": "203.0.113.1"},
    "web2": {"ansible_host": "203.0.113.2", "flask_gunicorn_app_name": "shop"},
    "web3": {"flask_gunicorn_lb_backend_address": "", "flask_gunicorn_app_name": "shop"},
    "web4": {"flask_gunicorn_lb_backend_address": "fd00::4"},
}


@pytest.mark.parametrize(
    "host, address",
    [("web1", "10.0.0.11"), ("web2", "203.0.113.2"), ("web3", "web3"), ("web4", "fd00::4")],
)
def test_a_hosts_address_is_its_variable_else_ansible_host_else_its_name(host, address):
    assert hosts.host_address(HOSTVARS, host) == address


def test_the_database_apps_are_the_web_hosts_apps_each_with_its_own_hosts_only():
    apps = hosts.database_apps(["web1", "web2", "web3", "web4", "web1"], HOSTVARS)
    assert apps == [
        {"name": "hello", "clients": ["10.0.0.11", "fd00::4"]},
        {"name": "shop", "clients": ["203.0.113.2", "web3"]},
    ]
    assert hosts.database_apps([], HOSTVARS) == []


def test_pg_hba_allows_each_app_from_its_hosts_only():
    apps = hosts.database_apps(["web1", "web3", "web4"], HOSTVARS)
    assert hosts.pg_hba(apps) == [
        "hostssl hello hello 10.0.0.11/32 scram-sha-256",
        "hostssl hello hello fd00::4/128 scram-sha-256",
        "hostssl shop shop web3 scram-sha-256",
    ]


def test_an_unknown_host_is_named():
    with pytest.raises(AnsibleError, match="'db9' is not a host"):
        hosts.host_address(HOSTVARS, "db9")


@pytest.mark.parametrize(
    "address, url",
    [
        ("10.0.0.5", "postgresql://hello:p%40ss%2Fw%3Ard@10.0.0.5:5432/hello"),
        ("fd00::5", "postgresql://hello:p%40ss%2Fw%3Ard@[fd00::5]:5432/hello"),
        ("db.example.com", "postgresql://hello:p%40ss%2Fw%3Ard@db.example.com:5432/hello"),
    ],
)
def test_the_database_url_encodes_the_password(address, url):
    assert hosts.database_url("p@ss/w:rd", "hello", address, "5432") == url


@pytest.mark.parametrize(
    "apps, address, problem",
    [
        ("hello", "10.0.0.5", 'flask_gunicorn_postgresql_apps: "hello" must be a list.'),
        ([{"name": "Hello", "clients": ["10.0.0.1"]}], "10.0.0.5", 'apps[0].name: "Hello" must'),
        ([{"name": "hello", "clients": []}], "10.0.0.5", "apps[0].clients: [] must be a non-empty"),
        ([{"name": "hello"}], "10.0.0.5", "apps[0].clients: null must"),
        ([{"name": "hello", "clients": ["10.0.0.1 all"]}], "db", '"10.0.0.1 all" is not an IP'),
        ([{"name": "a", "clients": ["h"]}, {"name": "a", "clients": ["h"]}], "db", "listed twice"),
        ([], "10.0.0.300", 'flask_gunicorn_postgresql_address: "10.0.0.300" must be'),
        ([], "db host", 'flask_gunicorn_postgresql_address: "db host" must be'),
    ],
)
def test_database_problems_name_the_variable_and_the_value(apps, address, problem):
    assert problem in " ".join(hosts.database_problems(apps, address))


def test_good_database_settings_have_no_problems():
    apps = [{"name": "hello", "clients": ["10.0.0.1", "fd00::1", "[fd00::2]", "web1.example."]}]
    assert hosts.database_problems(apps, "fd00::5") == []
    assert hosts.database_problems([], "db.example.com") == []
