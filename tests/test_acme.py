"""Unit tests of flask_gunicorn_acme, on lineages made with openssl in a temporary directory."""

import datetime
import importlib.util
import subprocess
from pathlib import Path

from module_runner import run_named

MODULES = Path(__file__).resolve().parents[1] / "plugins/modules"
spec = importlib.util.spec_from_file_location(
    "flask_gunicorn_acme", MODULES / "flask_gunicorn_acme.py"
)
acme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(acme)

DIRECTORY = "https://acme.example.test/dir"


def make_lineage(config_dir, name, names, days=90, server=DIRECTORY, key_type="rsa"):
    """A certbot-like lineage: live/<name>/cert.pem and renewal/<name>.conf."""
    live = config_dir / "live" / name
    live.mkdir(parents=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            str(days),
            "-subj",
            f"/CN={names[0]}",
            "-addext",
            "subjectAltName=" + ",".join(f"DNS:{n}" for n in names),
            "-keyout",
            str(live / "privkey.pem"),
            "-out",
            str(live / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    (config_dir / "renewal").mkdir(exist_ok=True)
    (config_dir / "renewal" / f"{name}.conf").write_text(
        f"version = 2.1.0\n[renewalparams]\nauthenticator = webroot\nserver = {server}\n"
        f"key_type = {key_type}\n"
    )


def test_a_missing_lineage_is_not_ready(tmp_path):
    found = acme.lineage(str(tmp_path), "example.com", ["example.com"], DIRECTORY)
    assert found["ready"] is False and "no certificate" in found["reason"]
    assert found["certificate"] == str(tmp_path / "live/example.com/fullchain.pem")
    assert found["key"] == str(tmp_path / "live/example.com/privkey.pem")


def test_a_lineage_with_the_same_names_in_any_order_and_case_is_ready(tmp_path):
    make_lineage(tmp_path, "example.com", ["example.com", "www.example.com"])
    found = acme.lineage(
        str(tmp_path), "example.com", ["WWW.example.com", "example.com"], DIRECTORY
    )
    assert found["ready"] is True and found["reason"] == ""
    assert found["names"] == ["example.com", "www.example.com"]
    assert 88 <= found["days_left"] <= 90


def test_other_names_another_acme_server_or_expiry_make_a_lineage_not_ready(tmp_path):
    make_lineage(tmp_path, "example.com", ["example.com"])
    names = acme.lineage(
        str(tmp_path), "example.com", ["example.com", "www.example.com"], DIRECTORY
    )
    assert names["ready"] is False and "not" in names["reason"]
    server = acme.lineage(str(tmp_path), "example.com", ["example.com"], "https://other.test/dir")
    assert server["ready"] is False and "came from" in server["reason"]
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=100)
    expired = acme.lineage(str(tmp_path), "example.com", ["example.com"], DIRECTORY, now=later)
    assert expired["ready"] is False and expired["reason"] == "the certificate has expired"
    key = acme.lineage(str(tmp_path), "example.com", ["example.com"], DIRECTORY, "ecdsa")
    assert key["ready"] is False and key["reason"] == "the certificate's key is rsa, not ecdsa"
    assert acme.lineage(str(tmp_path), "example.com", ["example.com"], DIRECTORY, "rsa")["ready"]


def test_certbot_is_asked_for_one_certificate_of_every_name_through_the_webroot():
    argv = acme.certbot_argv(
        ["certbot"],
        "example.com",
        ["example.com", "www.example.com"],
        "",
        DIRECTORY,
        "/w",
        "/etc/le",
    )
    assert argv[:3] == ["certbot", "certonly", "--non-interactive"]
    assert argv[argv.index("--webroot-path") + 1] == "/w"
    assert argv[argv.index("--cert-name") + 1] == "example.com"
    assert argv[argv.index("--server") + 1] == DIRECTORY
    assert "--register-unsafely-without-email" in argv and "--email" not in argv
    assert argv[-4:] == ["--domain", "example.com", "--domain", "www.example.com"]
    assert argv[argv.index("--key-type") + 1] == "ecdsa" and "--rsa-key-size" not in argv
    with_email = acme.certbot_argv(
        ["certbot"], "a.test", ["a.test"], "me@a.test", DIRECTORY, "/w", "/e"
    )
    assert with_email[with_email.index("--email") + 1] == "me@a.test"


def test_the_report_lists_every_lineage_with_its_days_left(tmp_path):
    make_lineage(tmp_path, "a.example.com", ["a.example.com"], days=10)
    make_lineage(tmp_path, "b.example.com", ["b.example.com", "c.example.com"], days=60)
    (tmp_path / "live" / "README").write_text("certbot's own note\n")
    entries = acme.report(str(tmp_path))
    assert [entry["name"] for entry in entries] == ["a.example.com", "b.example.com"]
    assert entries[0]["days_left"] in (9, 10) and entries[1]["names"] == [
        "b.example.com",
        "c.example.com",
    ]
    assert entries[1]["server"] == DIRECTORY and entries[1]["error"] == ""


def run_module(tmp_path, **args):
    return run_named("flask_gunicorn_acme", tmp_path, **args)


def fake_certbot(tmp_path):
    """A certbot that logs its call next to the log of the command run before it."""
    log = tmp_path / "calls.log"
    script = tmp_path / "certbot"
    script.write_text(f"#!/bin/sh\necho certbot >> {log}\nexit 1\n")
    script.chmod(0o755)
    return log, [str(script)]


def test_before_certbot_runs_only_when_certbot_runs_and_first(tmp_path):
    log, certbot = fake_certbot(tmp_path)
    config_dir = tmp_path / "letsencrypt"
    args = {
        "cert_name": "example.com",
        "domains": ["example.com"],
        "directory_url": DIRECTORY,
        "config_dir": str(config_dir),
        "key_type": "rsa",
        "certbot": certbot,
        "before_certbot": ["sh", "-c", f"echo reload >> {log}"],
    }
    make_lineage(config_dir, "example.com", ["example.com"])
    result = run_module(tmp_path, **args)
    assert result["changed"] is False and result["ready"] is True and not log.exists()
    # Another name: certbot must run (and fails here), after the command before it.
    result = run_module(tmp_path, **{**args, "domains": ["example.com", "www.example.com"]})
    assert result["failed"] is True and "certbot could not get" in result["msg"]
    assert log.read_text() == "reload\ncertbot\n"


def test_a_failing_command_before_certbot_keeps_certbot_from_running(tmp_path):
    log, certbot = fake_certbot(tmp_path)
    result = run_module(
        tmp_path,
        cert_name="example.com",
        domains=["example.com"],
        directory_url=DIRECTORY,
        config_dir=str(tmp_path / "letsencrypt"),
        certbot=certbot,
        before_certbot=["sh", "-c", "echo nginx is down >&2; exit 3"],
    )
    assert result["failed"] is True and result["rc"] == 3
    assert "nginx is down" in result["msg"] and not log.exists()


def test_check_mode_runs_neither_command(tmp_path):
    log, certbot = fake_certbot(tmp_path)
    result = run_module(
        tmp_path,
        _ansible_check_mode=True,
        cert_name="example.com",
        domains=["example.com"],
        directory_url=DIRECTORY,
        config_dir=str(tmp_path / "letsencrypt"),
        certbot=certbot,
        before_certbot=["sh", "-c", f"echo reload >> {log}"],
    )
    assert result["changed"] is True and result["ready"] is False and not log.exists()
