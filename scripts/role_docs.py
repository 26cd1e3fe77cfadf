"""Write the README variable tables from the roles' meta/argument_specs.yml (`make docs`).

Why: a role's variables were described three times (argument specs, defaults/main.yml comments,
README tables) and the copies drifted. The argument specs are what Ansible validates against and
what `ansible-doc -t role` shows, so they are the source; the README tables are generated from
them and never edited by hand. tests/test_role_interface.py fails when a README differs from what
this script writes, and the same tests keep defaults/main.yml and the specs' defaults equal.

What is generated: in each README, the text between a BEGIN and an END marker comment naming the
spec file (see `begin_marker`), a table of the `main` entry point's options in the spec's order,
with the columns variable, default and meaning. Everything around the markers is hand-written and
kept. The project README holds the table of roles/flask_gunicorn; each roles/<role>/README.md
holds its own role's.

Meaning: the option's description; a list of sentences is joined with spaces. Descriptions use
Ansible's documentation markup, which ansible-doc renders too: C(code), V(value), O(option) and
E(ENV_VAR) become Markdown code spans, I(text) italics, B(text) bold; other markup is refused.

Default: the spec's `default`, written as YAML in flow style (`[]`, `""`, `[a, b]`, `{k: v}`) in a
code span, so that the table can never disagree with the value Ansible applies. A default that
is a Jinja expression (it holds "{{" or "{%") means nothing to a reader as written, so its option
must give a readable form in its description: one description item starting with "Default: ",
e.g. "Default: C(/run/<name>.sock)." The table shows that form (without "Default: " and the final
full stop) and leaves the item out of the meaning; ansible-doc shows it beside the raw default.
A "Default: " item on a plain default is refused, as is a Jinja default without one: a hand-written
form could drift from a plain value, and the script would otherwise print the expression.

Usage: python scripts/role_docs.py [--check]
  writes the READMEs; with --check, writes nothing and exits 1 when one of them is out of date.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The project README documents these roles' variables in full, besides each role's own README.
PROJECT_README_ROLES = ("flask_gunicorn",)
READABLE_DEFAULT = "Default: "
HEADER = ["| variable | default | meaning |", "|---|---|---|"]
# Ansible's documentation markup: C(), V(), O() and E() hold code; I() and B() emphasis.
MARKUP = re.compile(r"\b([A-Z]{1,2})\(([^)]*)\)")
CODE_MARKUP = {"C", "V", "O", "E"}
EMPHASIS = {"I": "*", "B": "**"}


class SpecError(ValueError):
    """An argument spec this script cannot turn into a table."""


def spec_path(role: str) -> str:
    return f"roles/{role}/meta/argument_specs.yml"


def begin_marker(role: str) -> str:
    return f"<!-- BEGIN generated from {spec_path(role)} by make docs -->"


def end_marker(role: str) -> str:
    return f"<!-- END generated from {spec_path(role)} -->"


def roles(root: Path = ROOT) -> list[str]:
    """The roles that have argument specs."""
    return sorted(path.parent.parent.name for path in root.glob("roles/*/meta/argument_specs.yml"))


def options(role: str, root: Path = ROOT) -> dict:
    """The options of the role's main entry point, in the spec's order."""
    specs = yaml.safe_load((root / spec_path(role)).read_text())
    return specs["argument_specs"]["main"].get("options") or {}


def escape(text: str) -> str:
    """Plain text for a Markdown table cell: no table break, HTML tag or emphasis."""
    for char, escaped in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), ("*", "\\*"), ("`", "\\`")):
        text = text.replace(char, escaped)
    return text


def code(text: str) -> str:
    if "`" in text:
        raise SpecError(f"a backtick in code: {text!r}")
    return "`" + text.replace("|", "\\|") + "`"


def markdown(text: str) -> str:
    """Ansible documentation markup to Markdown, for one table cell."""
    out, last = [], 0
    for match in MARKUP.finditer(text):
        kind, content = match.groups()
        out.append(escape(text[last : match.start()]))
        if kind in CODE_MARKUP:
            out.append(code(content))
        elif kind in EMPHASIS:
            out.append(EMPHASIS[kind] + escape(content) + EMPHASIS[kind])
        else:
            raise SpecError(f"unsupported markup {kind}() in {text!r}")
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def sentences(option: dict) -> list[str]:
    description = option.get("description") or []
    items = [description] if isinstance(description, str) else list(description)
    return [" ".join(item.split()) for item in items]


def is_jinja(value) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list):
        return any(is_jinja(item) for item in value)
    if isinstance(value, dict):
        return any(is_jinja(key) or is_jinja(item) for key, item in value.items())
    return False


def flow(value) -> str:
    """A default as YAML in flow style, for reading: strings unquoted, but the empty one."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{flow(key)}: {flow(item)}" for key, item in value.items()) + "}"
    return str(value)


def row(name: str, option: dict) -> str:
    meaning, readable = [], []
    for sentence in sentences(option):
        (readable if sentence.startswith(READABLE_DEFAULT) else meaning).append(sentence)
    value = option.get("default")
    if is_jinja(value):
        if len(readable) != 1:
            raise SpecError(f"{name}: a Jinja default needs one {READABLE_DEFAULT!r} sentence")
        default = markdown(readable[0][len(READABLE_DEFAULT) :].rstrip("."))
    elif readable:
        raise SpecError(f"{name}: {READABLE_DEFAULT!r} is for Jinja defaults only")
    elif "default" not in option:
        default = "required" if option.get("required") else ""
    else:
        default = code(flow(value))
    if not meaning:
        raise SpecError(f"{name}: no description")
    return f"| `{name}` | {default} | {markdown(' '.join(meaning))} |"


def table(role: str, root: Path = ROOT) -> str:
    """The generated block: markers around the table of the role's main options."""
    rows = [row(name, option) for name, option in options(role, root).items()]
    return "\n".join([begin_marker(role), "", *HEADER, *rows, "", end_marker(role)])


def readme_roles(root: Path = ROOT) -> dict[Path, list[str]]:
    """Each README with generated tables, and the roles whose tables it holds."""
    readmes = {root / "README.md": [role for role in roles(root) if role in PROJECT_README_ROLES]}
    for role in roles(root):
        readmes[root / "roles" / role / "README.md"] = [role]
    return readmes


def render(text: str, tabled_roles: list[str], root: Path = ROOT) -> str:
    """The README text with each role's block between its markers rewritten."""
    for role in tabled_roles:
        begin, end = begin_marker(role), end_marker(role)
        if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
            raise SpecError(f"the README needs one {begin!r} line, then one {end!r} line")
        head, rest = text.split(begin)
        text = head + table(role, root) + rest.split(end, 1)[1]
    return text


def expected_readmes(root: Path = ROOT) -> dict[Path, str]:
    """Each README as `make docs` writes it."""
    return {
        path: render(path.read_text(), tabled_roles, root)
        for path, tabled_roles in readme_roles(root).items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report out-of-date READMEs")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected_readmes().items():
        if path.read_text() != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.write_text(text)
    for path in stale:
        print(f"{path}: {'out of date, run make docs' if args.check else 'rewritten'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
