"""Each role's public interface is stated three times: defaults, argument specs and the README.

The argument specs are the source: the README tables are generated from them (make docs,
scripts/role_docs.py). These tests fail when one of the three names a variable the others do not,
when a README table is not what the script writes, when a template lacks the managed-file header,
or when ansible-doc cannot show a role's entry points.
"""

import importlib.util
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
# Each role's entry points: a role added, or an entry point added or lost, must show up here.
ENTRY_POINTS = {
    "flask_gunicorn": ("main", "rollback", "certificates"),
    "flask_gunicorn_lb": ("main", "backend"),
    "flask_gunicorn_postgresql": ("main",),
}
# The project README documents these roles' variables in full; another role's variables are left
# to its own README, or listed there in full too.
PROJECT_README_ROLES = {"flask_gunicorn"}


def load_role_docs():
    spec = importlib.util.spec_from_file_location("role_docs", ROOT / "scripts/role_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


role_docs = load_role_docs()


def defaults(role):
    return set(yaml.safe_load((ROLES[role] / "defaults/main.yml").read_text()) or {})


def argument_specs(role):
    specs = yaml.safe_load((ROLES[role] / "meta/argument_specs.yml").read_text())
    return specs["argument_specs"]


def spec_options(role, entry_point="main"):
    return argument_specs(role)[entry_point].get("options", {})


def all_spec_options(role):
    """(entry point, option name, option) for every option of every entry point."""
    return [
        (entry_point, name, option)
        for entry_point, spec in argument_specs(role).items()
        for name, option in (spec.get("options") or {}).items()
    ]


def owner(variable):
    """The role a variable belongs to: the one with the longest prefix it starts with.

    flask_gunicorn_lb_name belongs to flask_gunicorn_lb, not to flask_gunicorn.
    """
    return max((role for role in ROLES if variable.startswith(role + "_")), key=len, default=None)


def readme_variables(readme, role):
    """Variables of the role named in the first column of the README's tables."""
    names = re.findall(r"^\| `([a-z][a-z0-9_]*)` \|", readme.read_text(), re.MULTILINE)
    return {name for name in names if owner(name) == role}


def test_every_role_has_its_entry_points_listed():
    assert set(ROLES) == set(ENTRY_POINTS)


@pytest.mark.parametrize("role", sorted(ROLES))
def test_argument_specs_hold_exactly_the_entry_points(role):
    assert sorted(argument_specs(role)) == sorted(ENTRY_POINTS[role])


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_default_has_an_argument_spec_and_back(role):
    assert defaults(role) == set(spec_options(role))


@pytest.mark.parametrize("role", sorted(ROLES))
def test_argument_spec_defaults_match_defaults_file(role):
    values = yaml.safe_load((ROLES[role] / "defaults/main.yml").read_text())
    mismatched = {
        (entry_point, name): (option.get("default"), values[name])
        for entry_point, name, option in all_spec_options(role)
        if name in values and option.get("default") != values[name]
    }
    assert mismatched == {}


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_option_has_a_type_and_description(role):
    incomplete = [
        (entry_point, name)
        for entry_point, name, option in all_spec_options(role)
        if "type" not in option or not option.get("description")
    ]
    assert incomplete == []


@pytest.mark.parametrize("role", sorted(ROLES))
def test_every_option_belongs_to_the_role(role):
    foreign = [name for _, name, _ in all_spec_options(role) if owner(name) != role]
    assert foreign == []


@pytest.mark.parametrize("role", sorted(ROLES))
def test_readme_table_lists_exactly_the_role_variables(role):
    # The project README tables flask_gunicorn's variables; the load balancer's live in its own
    # README only, so that no second copy can drift.
    expected = defaults(role) if role in PROJECT_README_ROLES else set()
    assert readme_variables(ROOT / "README.md", role) == expected


@pytest.mark.parametrize("role", sorted(ROLES))
def test_role_readme_lists_exactly_the_role_variables(role):
    assert readme_variables(ROLES[role] / "README.md", role) == defaults(role)


def test_role_docs_covers_the_same_readmes():
    assert set(role_docs.PROJECT_README_ROLES) == PROJECT_README_ROLES
    assert set(role_docs.roles(ROOT)) == set(ROLES)


@pytest.mark.parametrize(
    "readme",
    sorted(role_docs.readme_roles(ROOT)),
    ids=lambda path: str(path.relative_to(ROOT)),
)
def test_readme_tables_are_generated_from_argument_specs(readme):
    # A difference means an edited table or spec: change the spec and run make docs.
    assert readme.read_text() == role_docs.expected_readmes(ROOT)[readme]


def test_a_jinja_default_is_shown_in_its_readable_form():
    option = {
        "default": "/run/{{ flask_gunicorn_app_name }}.sock",
        "description": ["The socket.", "Default: C(/run/<name>.sock)."],
    }
    assert role_docs.row("x_socket", option) == "| `x_socket` | `/run/<name>.sock` | The socket. |"


@pytest.mark.parametrize(
    "option",
    [
        {"default": "{{ x_other }}", "description": "No readable form."},
        {"default": "plain", "description": ["A plain default.", "Default: something else."]},
    ],
    ids=["jinja without readable form", "readable form of a plain default"],
)
def test_a_readable_default_is_there_exactly_for_jinja_defaults(option):
    with pytest.raises(role_docs.SpecError):
        role_docs.row("x_option", option)


def included_templates():
    """Templates that others include: fragments, whose includer carries the header."""
    return {
        name
        for template in (ROOT / "roles").glob("*/templates/**/*.j2")
        for name in re.findall(r"{%\s*include\s+'([^']+)'", template.read_text())
    }


@pytest.mark.parametrize(
    "template",
    sorted(
        path
        for path in (ROOT / "roles").glob("*/templates/**/*.j2")
        if str(path).split("/templates/", 1)[1] not in included_templates()
    ),
    ids=lambda p: p.name,
)
def test_templates_start_with_the_managed_header(template):
    assert template.read_text().startswith("{{ ansible_managed | comment }}")


@pytest.mark.parametrize("role", sorted(ROLES))
def test_ansible_doc_shows_the_entry_points(role):
    # ansible-doc from the same environment as this interpreter (the project's venv).
    ansible_doc = Path(sys.executable).parent / "ansible-doc"
    result = subprocess.run(
        [str(ansible_doc), "--type", "role", "--roles-path", str(ROOT / "roles"), role],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )
    for entry_point in ENTRY_POINTS[role]:
        assert re.search(rf"ENTRY POINT: \W*{entry_point}\b", result.stdout)
    missing = {name for _, name, _ in all_spec_options(role) if name not in result.stdout}
    assert missing == set()
