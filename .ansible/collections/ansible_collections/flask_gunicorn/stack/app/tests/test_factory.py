import pytest

from hello import create_app
from hello.config import ConfigError

REAL_KEY = "x" * 32


def test_testing_config_is_chosen_by_name():
    app = create_app("testing")
    assert app.testing
    assert app.config["ENVIRONMENT"] == "testing"


def test_environment_name_comes_from_app_env(monkeypatch):
    monkeypatch.setenv("APP_ENV", "development")
    app = create_app()
    assert app.config["ENVIRONMENT"] == "development"
    assert app.debug


def test_production_is_the_default_and_needs_a_secret_key(monkeypatch):
    monkeypatch.delenv("APP_ENV", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="SECRET_KEY must be set"):
        create_app()


@pytest.mark.parametrize("name", ["production", "staging"])
@pytest.mark.parametrize("weak_key", ["dev", "change-me", "short"])
def test_public_environments_refuse_weak_keys(monkeypatch, name, weak_key):
    monkeypatch.setenv("SECRET_KEY", weak_key)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app(name)


def test_secret_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", REAL_KEY)
    app = create_app("production")
    assert app.config["SECRET_KEY"] == REAL_KEY
    assert not app.testing


def test_flask_prefixed_variables_override_config(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", REAL_KEY)
    monkeypatch.setenv("FLASK_SITE_NAME", "Overridden")
    assert create_app("staging").config["SITE_NAME"] == "Overridden"


def test_instance_config_file_overrides_the_class(monkeypatch, tmp_path):
    (tmp_path / "config.py").write_text(f"SECRET_KEY = {REAL_KEY!r}\nSITE_NAME = 'From instance'\n")
    monkeypatch.setenv("APP_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    app = create_app("production")
    assert app.config["SITE_NAME"] == "From instance"
    assert app.instance_path == str(tmp_path)


def test_unknown_environment_is_refused():
    with pytest.raises(ConfigError, match="unknown environment 'qa'"):
        create_app("qa")
