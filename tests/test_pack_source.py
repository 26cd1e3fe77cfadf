"""The role's packing module, run for real: GNU tar packs real directories on this machine.

What the tests hold the module to: gitignore-like exclude patterns (a leading "/" anchors at the
source directory, anything else matches at any depth, wildcards stay within one name), the role's
default patterns (secrets, local state, virtualenvs, caches and version control stay behind,
.flaskenv ships), modes without group or world write and without set-id or sticky bits, and
byte-for-byte reproducible archives.
"""

import hashlib
import importlib.util
import json
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MODULE_PATH = ROOT / "plugins/modules/flask_gunicorn_pack_source.py"
DEFAULTS = yaml.safe_load((ROOT / "roles/flask_gunicorn/defaults/main.yml").read_text())
DEFAULT_PATTERNS = DEFAULTS["flask_gunicorn_source_exclude_default"]


def load_module():
    spec = importlib.util.spec_from_file_location("flask_gunicorn_pack_source", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pack_source = load_module()


def write(root, relative, content="x\n", mode=0o644):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(mode)
    return path


@pytest.fixture
def source(tmp_path):
    """An app's project directory as a developer's checkout holds it."""
    root = tmp_path / "src"
    for relative in [
        "app.py",
        "requirements.txt",
        ".flaskenv",
        "env.py",
        "shop/__init__.py",
        "shop/instance/defaults.cfg",
        "shop/.env",
        "shop/static/site.css",
        "logs/today.log",
        "top.log",
        ".env",
        ".env.production",
        ".env.d/extra",
        "instance/app.sqlite3",
        ".venv/bin/python",
        "venv/bin/python",
        "shop/__pycache__/views.cpython-311.pyc",
        "old.pyc",
        "shop.egg-info/PKG-INFO",
        ".git/HEAD",
        ".gitignore",
        ".pytest_cache/README.md",
    ]:
        write(root, relative)
    write(root, "world_writable.txt", mode=0o666)
    write(root, "bin/tool", "#!/bin/sh\n", mode=0o4755)
    write(root, "bin/group_tool", "#!/bin/sh\n", mode=0o2775)
    (root / "shared_tmp").mkdir()
    (root / "shared_tmp").chmod(0o1777)
    return root


def run_module(args, tmp_path):
    """Runs the module as Ansible would, in a process of its own, with its arguments in a file."""
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    result = subprocess.run(
        [sys.executable, str(MODULE_PATH), str(args_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    return json.loads(result.stdout)


def pack(source, dest, patterns):
    subprocess.run(pack_source.tar_command("tar", str(source), str(dest), patterns), check=True)
    with tarfile.open(dest) as archive:
        return {member.name.removeprefix("./").rstrip("/"): member for member in archive}


def test_a_leading_slash_anchors_and_anything_else_matches_at_any_depth():
    assert pack_source.exclude_arguments(["/instance", ".env", "static/cache/"]) == [
        "--no-wildcards-match-slash",
        "--anchored",
        "--exclude=./instance",
        "--no-anchored",
        "--exclude=.env",
        "--no-anchored",
        "--exclude=static/cache",
    ]


@pytest.mark.parametrize("pattern", ["", "/", "//", "!keep.txt", "**/secret", "a/**"])
def test_patterns_without_a_meaning_here_are_refused(pattern):
    with pytest.raises(ValueError, match="exclude pattern"):
        pack_source.exclude_arguments([pattern])


def test_anchored_and_unanchored_patterns_on_a_real_tree(source, tmp_path):
    members = pack(source, tmp_path / "a.tar", ["/instance", "/*.log", ".env", ".env.*"])
    # Anchored: only the top-level ones, wildcards within one name.
    assert "instance" not in members
    assert "shop/instance/defaults.cfg" in members
    assert "top.log" not in members
    assert "logs/today.log" in members
    # Unanchored: at any depth; a directory goes with its content.
    assert {".env", "shop/.env", ".env.production", ".env.d", ".env.d/extra"}.isdisjoint(members)
    assert {".flaskenv", "env.py", "app.py"} <= set(members)


def test_the_role_defaults_leave_secrets_state_virtualenvs_caches_and_vcs_behind(source, tmp_path):
    members = pack(source, tmp_path / "a.tar", DEFAULT_PATTERNS)
    assert sorted(members) == sorted(
        [
            ".",
            ".flaskenv",
            "app.py",
            "bin",
            "bin/group_tool",
            "bin/tool",
            "env.py",
            "logs",
            "logs/today.log",
            "requirements.txt",
            "shared_tmp",
            "shop",
            "shop/__init__.py",
            "shop/instance",
            "shop/instance/defaults.cfg",
            "shop/static",
            "shop/static/site.css",
            "top.log",
            "world_writable.txt",
        ]
    )


def test_modes_lose_group_and_world_write_and_special_bits(source, tmp_path):
    members = pack(source, tmp_path / "a.tar", DEFAULT_PATTERNS)
    assert members["world_writable.txt"].mode == 0o644
    assert members["bin/tool"].mode == 0o755
    assert members["bin/group_tool"].mode == 0o755
    assert members["shared_tmp"].mode == 0o755
    unsafe = stat.S_IWGRP | stat.S_IWOTH | stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
    assert [name for name, member in members.items() if member.mode & unsafe] == []
    assert {(member.uid, member.gid) for member in members.values()} == {(0, 0)}


def test_the_same_source_packs_to_the_same_bytes(source, tmp_path):
    pack(source, tmp_path / "a.tar", DEFAULT_PATTERNS)
    (source / "app.py").touch()  # a newer mtime changes nothing
    pack(source, tmp_path / "b.tar", DEFAULT_PATTERNS)
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_the_module_packs_as_ansible_runs_it(source, tmp_path):
    dest = tmp_path / "module.tar"
    result = run_module({"src": str(source), "dest": str(dest), "exclude": [".env"]}, tmp_path)
    assert not result.get("failed"), result
    with tarfile.open(dest) as archive:
        names = archive.getnames()
    assert "./.env" not in names
    assert "./.env.production" in names


def test_without_dest_the_module_writes_nothing_and_returns_the_same_checksum(source, tmp_path):
    dest = tmp_path / "module.tar"
    packed = run_module({"src": str(source), "dest": str(dest), "exclude": [".env"]}, tmp_path)
    summed = run_module({"src": str(source), "exclude": [".env"]}, tmp_path)
    assert packed["changed"] and not summed["changed"]
    assert summed["checksum"] == packed["checksum"] == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["args.json", "module.tar", "src"]
    (source / "app.py").write_text("changed\n")
    assert (
        run_module({"src": str(source), "exclude": [".env"]}, tmp_path)["checksum"]
        != summed["checksum"]
    )


def test_the_module_refuses_a_bad_pattern_and_says_which(source, tmp_path):
    result = run_module(
        {"src": str(source), "dest": str(tmp_path / "x.tar"), "exclude": ["!keep"]}, tmp_path
    )
    assert result["failed"]
    assert "'!keep'" in result["msg"]


def test_the_module_fails_with_what_tar_said(tmp_path):
    result = run_module({"src": str(tmp_path / "missing")}, tmp_path)
    assert result["failed"] and result["msg"].startswith("tar failed: ")
    assert "missing" in result["msg"]


def test_the_module_returns_the_git_commit_of_the_source_dirty_when_it_changed(tmp_path):
    checkout = tmp_path / "checkout"
    app = write(checkout, "app/app.py").parent
    write(checkout, "docs/notes.md")
    assert run_module({"src": str(app)}, tmp_path)["commit"] == ""

    def git(*args):
        identity = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
        command = ["git", *identity, "-C", str(checkout), *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()

    git("init", "--quiet")
    git("add", "--all")
    git("commit", "--quiet", "--message", "first")
    head = git("rev-parse", "HEAD")
    assert run_module({"src": str(app)}, tmp_path)["commit"] == head
    # Only changes in the source count: the app is packed from there.
    write(checkout, "docs/notes.md", "changed\n")
    assert run_module({"src": str(app)}, tmp_path)["commit"] == head
    write(checkout, "app/app.py", "changed\n")
    assert run_module({"src": str(app)}, tmp_path)["commit"] == head + "-dirty"
