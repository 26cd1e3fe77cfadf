"""The role's public interface is stated three times: defaults, argument specs and the README.

These tests fail when one of them names a variable the others do not, when a template lacks the
managed-file header, or when ansible-doc cannot show the role's entry points.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ROLES = {
    path.name: path
    for path in (ROOT / "roles").iterdir()
    if (path / "meta/argument_specs.yml").exists()
}


def defaults(role):
    return set(yaml.safe_load((ROLES[role] / "defaults/main.yml").read_text()) or {})


def spec_options(role, entry_point="main"):
    specs = yaml.safe_load((ROLES[role] / "meta/argument_specs.yml").read_text())
    return specs["argument_specs"][entry_point].get("options", {})


def readme_variables(readme, prefix):
    """Variables named in the first column of the README's tables."""
    return set(re.findall(rf"^\| `({prefix}[a-z0-9_]+)` \|", readme.read_text(), re.MULTILINE))


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_default_has_an_argument_spec_and_back(role):
    assert defaults(role) == set(spec_options(role))


@pytest.mark.parametrize("role", sorted(ROLES))
def test_argument_spec_defaults_match_defaults_file(role):
    values = yaml.safe_load((ROLES[role] / "defaults/main.yml").read_text())
    mismatched = {
        name: (option.get("default"), values[name])
        for name, option in spec_options(role).items()
        if name in values and option.get("default") != values[name]
    }
    assert mismatched == {}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_option_has_a_type_and_description(role):
    incomplete = [
        name
        for name, option in spec_options(role).items()
        if "type" not in option or not option.get("description")
    ]
    assert incomplete == []


@pytest.mark.parametrize("role", sorted(ROLES))
def test_readme_table_lists_exactly_the_role_variables(role):
    prefix = role + "_"
    assert readme_variables(ROOT / "README.md", prefix) == defaults(role)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_role_readme_lists_exactly_the_role_variables(role):
    prefix = role + "_"
    assert readme_variables(ROLES[role] / "README.md", prefix) == defaults(role)


@pytest.mark.parametrize(
    "template", sorted((ROOT / "roles").glob("*/templates/**/*.j2")), ids=lambda p: p.name
)
def test_templates_start_with_the_managed_header(template):
    assert template.read_text().startswith("{{ ansible_managed | comment }}")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_ansible_doc_shows_the_entry_point(role):
    # ansible-doc from the same environment as this interpreter (the project's venv).
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    result = subprocess.run(
        [str(ansible_doc), "--type", "role", "--roles-path", str(ROOT / "roles"), role],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    assert re.search(r"ENTRY POINT: \W*main\b", result.stdout)
    assert re.search(r"ENTRY POINT: \W*rollback\b", result.stdout)
    assert "flask_gunicorn_app_name" in result.stdout
