"""Filters that read the inventory for the roles: hosts' private addresses, the database's users.

flask_gunicorn_host_address(hostvars, host, variable): a host's private address, its `variable`
  (e.g. flask_gunicorn_lb_backend_address), else its ansible_host, else its inventory name: the
  rule the load balancer follows for its backends.
flask_gunicorn_database_apps(web_hosts, hostvars, default_app): the apps of the web hosts, each
  with the addresses of the hosts that run it, for the PostgreSQL role.
flask_gunicorn_database_problems(apps, address): what is wrong in the PostgreSQL role's apps and
  address, each problem naming the variable and the value as given.
flask_gunicorn_pg_hba(apps, connection_type, method): pg_hba.conf's lines for those apps.
flask_gunicorn_database_url(password, app, address, port): the app's DATABASE_URL.
"""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import quote

from ansible.errors import AnsibleFilterError

# The address variable the load balancer and the database share for a web host.
WEB_ADDRESS_VARIABLE = "flask_gunicorn_lb_backend_address"


def _variables(hostvars, host):
    try:
        return hostvars[host]
    except KeyError:
        raise AnsibleFilterError(f"{host!r} is not a host of the inventory") from None


def _given(variables, name):
    value = variables.get(name) if hasattr(variables, "get") else None
    return None if value in (None, "") else str(value)


def host_address(hostvars, host, variable=WEB_ADDRESS_VARIABLE):
    """The host's `variable`, else its ansible_host, else its inventory name."""
    variables = _variables(hostvars, host)
    return _given(variables, variable) or _given(variables, "ansible_host") or str(host)


def database_apps(web_hosts, hostvars, default_app="hello"):
    """[{name, clients}] sorted by app: each app of the web hosts and the addresses running it.

    A web host's app is its flask_gunicorn_app_name, else default_app (the web role's default,
    which the inventory does not carry)."""
    apps = {}
    for host in web_hosts or []:
        variables = _variables(hostvars, host)
        app = _given(variables, "flask_gunicorn_app_name") or default_app
        clients = apps.setdefault(app, [])
        address = host_address(hostvars, host)
        if address not in clients:
            clients.append(address)
    return [{"name": app, "clients": apps[app]} for app in sorted(apps)]


def hba_address(address):
    """An address as pg_hba.conf takes it: an IP address as a /32 or /128 range, a name as is."""
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return address
    return f"{ip}/{ip.max_prefixlen}"


APP_NAME = re.compile(r"[a-z][a-z0-9_-]*")
HOST_NAME = re.compile(
    r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?"
)


def address_problem(address):
    """Why address is neither an IP address (IPv6 bare or in brackets) nor a host name, or None."""
    if not isinstance(address, str) or not address:
        return "is not an IP address or a host name"
    bare = address[1:-1] if address.startswith("[") and address.endswith("]") else address
    try:
        ipaddress.ip_address(bare)
        return None
    except ValueError:
        pass
    if bare != address or not HOST_NAME.fullmatch(address) or address.replace(".", "").isdigit():
        return "is not an IP address or a host name"
    return None


def database_problems(apps, address=None):
    """What is wrong in flask_gunicorn_postgresql_apps and _address: one sentence each."""
    problems = []
    if not isinstance(apps, list):
        return [f"flask_gunicorn_postgresql_apps: {json.dumps(apps)} must be a list."]
    names = []
    for index, app in enumerate(apps):
        where = f"flask_gunicorn_postgresql_apps[{index}]"
        if not isinstance(app, dict):
            problems.append(f"{where}: {json.dumps(app)} must be a mapping with name and clients.")
            continue
        name, clients = app.get("name"), app.get("clients")
        if not isinstance(name, str) or not APP_NAME.fullmatch(name):
            problems.append(
                f"{where}.name: {json.dumps(name)} must start with a lowercase letter and hold "
                'only lowercase letters, digits, "-" and "_" (the app\'s flask_gunicorn_app_name).'
            )
        elif name in names:
            problems.append(f"{where}.name: {json.dumps(name)} is listed twice.")
        names.append(name)
        if not isinstance(clients, list) or not clients:
            problems.append(
                f"{where}.clients: {json.dumps(clients)} must be a non-empty list of the "
                "addresses of the app's web hosts."
            )
            continue
        problems.extend(
            f"{where}.clients: {json.dumps(client)} is not an IP address or a host name."
            for client in clients
            if address_problem(client)
        )
    if address is not None and address_problem(address):
        problems.append(
            f"flask_gunicorn_postgresql_address: {json.dumps(address)} must be an IP address or "
            "a host name (the host's private address)."
        )
    return problems


def pg_hba(apps, connection_type="hostssl", method="scram-sha-256"):
    """One line per app and client address: that app's role, to its own database only."""
    lines = []
    for app in apps:
        for client in app["clients"]:
            name = app["name"]
            lines.append(f"{connection_type} {name} {name} {hba_address(client)} {method}")
    return lines


def database_url(password, app, address, port=5432):
    """postgresql://<app>:<password>@<address>:<port>/<app>, the password percent-encoded."""
    host = address
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    user = quote(str(app), safe="")
    return f"postgresql://{user}:{quote(str(password), safe='')}@{host}:{int(port)}/{user}"


class FilterModule:
    def filters(self):
        return {
            "flask_gunicorn_host_address": host_address,
            "flask_gunicorn_database_apps": database_apps,
            "flask_gunicorn_database_problems": database_problems,
            "flask_gunicorn_pg_hba": pg_hba,
            "flask_gunicorn_database_url": database_url,
        }
