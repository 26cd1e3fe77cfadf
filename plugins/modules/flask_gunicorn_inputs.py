#!/usr/bin/python
"""Check the inputs both roles write into nginx's configuration, and return them normalised."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_inputs
short_description: Refuse or normalise the inputs the roles write into nginx's configuration
description:
  - Reads nothing and changes nothing (safe in check mode). Each rule of the two roles' inputs
    beyond what argument specs can say lives here, once. The module fails, naming each variable
    and its value as given (in JSON), when an input is refused; otherwise it returns the forms
    the roles use.
  - Server names are host names (labels of letters, digits and C(-), at most 63 characters, not
    starting or ending with C(-)), C(*.) may start a name. A trailing dot is dropped (nginx drops
    it from the C(Host) it matches), and a name given twice (in any case) is kept once.
  - Trusted proxies are IPv4 or IPv6 addresses or CIDR ranges; nginx takes IPv6 bare there, so
    brackets are removed. A range with host bits set becomes its network.
  - Backend addresses are host names, IPv4 or IPv6 addresses; an IPv6 address goes in brackets
    before the port in the returned server address.
  - Lists are given as lists or as strings of items separated by white space.
  - URL paths (prefix, static path, health path) must be paths nginx routes to the app. The
    server block answers 404 itself for every path with a segment starting with C(.) (dot
    files), except C(/.well-known/), kept for the site (ACME); a prefix or a static path with
    such a segment is refused, C(/.well-known) as well. A static path of C(/) (or empty) while
    nginx serves the static files would take every URL of the app; a health path below the
    static path would be answered from disk. The health path must be a URL path (an optional
    query string) that curl sends as written and that nginx routes under the prefix.
options:
  role:
    description: The role calling, which names the variables in messages (C(<role>_server_name)).
    type: str
    default: flask_gunicorn
    choices: [flask_gunicorn, flask_gunicorn_lb]
  server_name: {description: The server names as given (a list or a string)., type: raw}
  http_port: {description: The role's HTTP port as given., type: raw}
  https_port: {description: The role's HTTPS port as given., type: raw}
  trusted_proxies: {description: flask_gunicorn_trusted_proxies as given., type: raw}
  writable_paths: {description: flask_gunicorn_writable_paths as given., type: raw}
  shared_paths: {description: flask_gunicorn_shared_paths as given., type: raw}
  url_prefix: {description: flask_gunicorn_url_prefix as given., type: str}
  static_url_path: {description: flask_gunicorn_static_url_path as given., type: str, default: ""}
  static_dir:
    description: flask_gunicorn_static_dir; empty when the app serves its static files itself.
    type: str
    default: ""
  health_path: {description: flask_gunicorn_health_path as given., type: str}
  pool: {description: flask_gunicorn_lb_name as given., type: str}
  backend: {description: flask_gunicorn_lb_backend as given (the backend entry point)., type: str}
  backend_group: {description: flask_gunicorn_lb_backend_group., type: str, default: ""}
  backends:
    description:
      - Each backend's inventory name, address and port as given (C(name), C(address), C(port)).
    type: list
    elements: dict
  own_name:
    description:
      - The load balancer's own inventory name; when it is among the backends, its backend port
        must differ from O(http_port).
    type: str
  tls_certificate_source:
    description:
      - flask_gunicorn_tls_certificate_source (C(self_signed), C(files) or C(acme)); checked with
        O(tls_enabled), O(tls_certificate), O(acme_email) and O(acme_directory_url). C(files) needs
        a certificate, the other two take none. C(acme) needs TLS and server names, none a
        wildcard (HTTP-01 cannot prove one), an email address or none, and an C(https://)
        directory URL.
    type: str
    choices: [self_signed, files, acme]
  tls_enabled: {description: flask_gunicorn_tls_enabled., type: bool, default: false}
  tls_certificate: {description: flask_gunicorn_tls_certificate as given., type: str, default: ""}
  acme_email: {description: flask_gunicorn_acme_email as given., type: str, default: ""}
  acme_directory_url: {description: flask_gunicorn_acme_directory_url as given., type: str}
  acme_webroot:
    description:
      - The host's ACME webroot, which certbot writes HTTP-01 challenges into; see
        RV(acme_challenge_location).
    type: str
  tls_certificate_key:
    description:
      - The role's C(<role>_tls_certificate_key) as given (a controller path). With it, TLS on and
        the source C(files), both files are read on the controller; they must hold a PEM
        certificate (the server's first, then its chain) and the unencrypted PEM key of that
        certificate. A message names the file, never the key's content.
    type: str
  allowed_clients:
    description: C(<role>_allowed_clients) as given, with the rules of O(trusted_proxies).
    type: raw
  security_headers:
    description:
      - The role's security headers, a mapping of header names to values (none holding a double
        quote, a backslash or a line break); with O(hsts_max_age) and O(tls_enabled), see
        RV(security_header_lines).
    type: raw
  hsts_max_age: {description: The role's HSTS max-age in seconds as given., type: raw}
  catch_all:
    description:
      - The default servers that close requests for unknown host names (444), see RV(catch_all).
      - C(http_port), C(acme_snippet), and for HTTPS C(https_port), C(tls_settings_file) and,
        for an nginx older than 1.19.4, C(certificate) (a mapping with C(certificate) and C(key)
        paths on the host).
    type: dict
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Check the web host's inputs
  flask_gunicorn_inputs:
    server_name: example.com www.example.com
    trusted_proxies: ["10.0.0.0/8", "2001:db8::1"]
    http_port: 80
    https_port: 443
    url_prefix: /shop
    static_url_path: /static
    static_dir: shop/static
    health_path: /healthz
    writable_paths: []
    shared_paths: [uploads]
  register: inputs

- name: Check the load balancer's inputs
  flask_gunicorn_inputs:
    role: flask_gunicorn_lb
    pool: web
    server_name: [shop.example.com]
    http_port: 80
    backend_group: web
    backends:
      - {name: web1, address: 2001:db8::11, port: 80}
    own_name: lb1
"""

RETURN = r"""
server_names:
  description: The server names as a list, without trailing dots or repeated names.
  type: list
  returned: when server_name is given
trusted_proxies:
  description: The trusted proxies as a list, as nginx takes them (IPv6 without brackets).
  type: list
  returned: when trusted_proxies is given
writable_paths:
  description: The writable paths as a list.
  type: list
  returned: when writable_paths is given
shared_paths:
  description: The shared paths as a list.
  type: list
  returned: when shared_paths is given
static_location:
  description:
    - The static files' location below the prefix (C(/static/)); empty when the app serves them.
  type: str
  returned: when health_path is given
backend_servers:
  description: Each backend's server address for nginx, by inventory name (C([2001:db8::11]:80)).
  type: dict
  returned: when backends are given
allowed_clients:
  description: The allowed clients as a list, as nginx takes them.
  type: list
  returned: when allowed_clients is given
tls_settings:
  description:
    - Mozilla's intermediate TLS settings, the snippet every TLS server block of both roles
      includes (one file on a host, whichever role wrote it last).
  type: str
  returned: when tls_enabled is true
security_headers:
  description:
    - The security headers as a list of C(name) and C(value), sorted by name, with
      C(Strict-Transport-Security) last when TLS is on and the max-age is over 0.
  type: list
  returned: when security_headers is given
security_header_lines:
  description:
    - nginx's C(add_header ... always;) lines of the security headers, sorted by name, with
      C(Strict-Transport-Security) last when TLS is on and the max-age is over 0.
  type: list
  returned: when security_headers is given
catch_all:
  description:
    - The catch-all servers' text, HTTP (444, but ACME's challenges) and optionally HTTPS
      (C(ssl_reject_handshake), or the given certificate and 444).
  type: str
  returned: when catch_all is given
acme_challenge_location:
  description:
    - The nginx location that answers ACME HTTP-01 challenges from O(acme_webroot), a server-level
      snippet both roles write to the same file and include in every server block they write (on
      its HTTP port, before any redirect). A C(^~) prefix location, which no regular expression
      location (dot files) and no app's location takes over.
  type: str
  returned: when acme_webroot is given
"""

import ipaddress
import json
import re
from urllib.parse import unquote

from ansible.module_utils.basic import AnsibleModule


def q(value):
    """A value as the user wrote it, in JSON: double quotes keep Ansible's YAML output readable."""
    return json.dumps(value)


class Refused(Exception):
    """An input the roles refuse; the message names the variable and the value."""


# --- Lists: a list, or a string of items separated by white space (as nginx's server_name).


def as_list(variable, value):
    """value as a list: a string is split at white space; nothing given is the empty list."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return value
    raise Refused(
        f"{variable}: {q(value)} must be a list, or a string of items separated by spaces."
    )


def refuse_items(variable, value, problems, rule):
    """Refuses value when an item has a problem: each is named, with the variable's rule."""
    if problems:
        held = "; ".join(f"holds {q(item)}, which {problem}" for item, problem in problems)
        raise Refused(f"{variable}: {q(value)} {held}. {rule}")


# --- Host names: server names (a leading "*." allowed) and backend addresses.

LABEL_CHARACTER = re.compile(r"[^A-Za-z0-9-]")
DOTTED_DIGITS = re.compile(r"[0-9.]+")
IPV4 = re.compile(r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}")
LABELS = (
    'labels of letters, digits and "-" (at most 63 characters each, neither starting nor ending '
    'with "-") separated by ".", an internationalised name in its punycode form ("xn--...")'
)
SERVER_NAMES = (
    f'Server names are host names, {LABELS}; "*." may start one. Give them as a list or as a '
    "string of names separated by spaces."
)


def punycode(name):
    """The ASCII (punycode) form of an internationalised name, or None."""
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return None


def host_name_problem(name, wildcard=False):
    """Why name is not a host name (with wildcard, "*." may start it), or None when it is one."""
    if not isinstance(name, str):
        return "is not a string"
    if not name:
        return "is empty"
    body = name[2:] if wildcard and name.startswith("*.") else name
    # The root's dot ends a fully qualified name.
    body = body[:-1] if body.endswith(".") else body
    if "*" in body:
        return (
            'has a "*" that is not the whole first label ("*.example.com")'
            if wildcard
            else 'has a "*"'
        )
    if not body.isascii():
        ascii_form = punycode(body)
        return "is not ASCII" + (
            f": write it in its punycode form {q(ascii_form)}" if ascii_form else ""
        )
    if len(body) > 253:
        return "is longer than 253 characters"
    for label in body.split("."):
        if not label:
            return 'has an empty label (a "." at the start or two in a row)'
        character = LABEL_CHARACTER.search(label)
        if character:
            return f"has {q(character.group())} in the label {q(label)}"
        if len(label) > 63:
            return f"has a label of {len(label)} characters, {q(label)}"
        if label.startswith("-") or label.endswith("-"):
            return f'has the label {q(label)}, starting or ending with "-"'
    return None


def server_names(variable, value):
    """The server names as a list: checked, without a trailing dot, each name once."""
    names = as_list(variable, value)
    problems = [(name, host_name_problem(name, wildcard=True)) for name in names]
    refuse_items(
        variable,
        value,
        [(name, problem) for name, problem in problems if problem],
        SERVER_NAMES,
    )
    result, seen = [], set()
    for name in names:
        # nginx drops the trailing dot of the Host it matches, never that of a server name.
        name = name[:-1] if name.endswith(".") else name
        # nginx compares names in lowercase.
        if name.lower() not in seen:
            seen.add(name.lower())
            result.append(name)
    return result


# --- IP addresses: trusted proxies and backend addresses.

BRACKETED = re.compile(r"\[([^\[\]]*)\](?:/(.*))?", re.DOTALL)
PREFIX_LENGTH = re.compile(r"0|[1-9][0-9]{0,2}")


def ip_address(text):
    """The address text holds (IPv4 dotted decimal without leading zeros, or IPv6), or None."""
    try:
        if ":" not in text:
            return ipaddress.IPv4Address(text) if IPV4.fullmatch(text) else None
        # An IPv6 zone ("%eth0") is refused: nginx takes none.
        return ipaddress.IPv6Address(text) if "%" not in text else None
    except ValueError:
        return None


def proxy(item):
    """(what nginx takes for item, its network), or (None, why it is refused)."""
    if not isinstance(item, str):
        return None, "is not a string"
    bracketed = BRACKETED.fullmatch(item)
    if bracketed:
        text, length = bracketed.groups()
        if ":" not in text:
            return None, "is in brackets, which hold an IPv6 address only"
    else:
        text, _, length = item.partition("/")
        length = length if "/" in item else None
    address = ip_address(text)
    if address is None:
        if "%" in text:
            return None, 'has an IPv6 zone ("%..."), which nginx does not take'
        if re.search(r"(?:^|\.)0[0-9]", text):
            return None, "is not an IP address: an IPv4 address has no leading zeros"
        return None, "is not an IP address or a CIDR range"
    if length is None:
        return text, ipaddress.ip_network(address)
    if not PREFIX_LENGTH.fullmatch(length) or int(length) > address.max_prefixlen:
        return None, f"has a prefix length that is not 0 to {address.max_prefixlen}"
    network = ipaddress.ip_network(f"{address}/{length}", strict=False)
    # nginx warns that the host bits of a range are meaningless: it gets the network.
    written = f"{text}/{length}" if network.network_address == address else str(network)
    return written, network


def trusted_proxies(variable, value):
    """The trusted proxies as nginx's set_real_ip_from and geo take them, each once."""
    items = as_list(variable, value)
    parsed = [(item, *proxy(item)) for item in items]
    refuse_items(
        variable,
        value,
        [(item, why) for item, written, why in parsed if written is None],
        "Trusted proxies are IPv4 or IPv6 addresses or CIDR ranges (10.0.0.0/8, 2001:db8::/32), "
        "as a list or a string separated by spaces.",
    )
    result, seen = [], set()
    for _, written, network in parsed:
        if network not in seen:
            seen.add(network)
            result.append(written)
    return result


def backend_address(address):
    """(the address as nginx's server line takes it before ":port", None), or (None, why not)."""
    if not isinstance(address, str) or not address:
        return None, "is empty" if address == "" else "is not a string"
    bracketed = BRACKETED.fullmatch(address)
    if bracketed and bracketed.group(2) is None and ":" in bracketed.group(1):
        inside = ip_address(bracketed.group(1))
        return (address, None) if inside else (None, "is not an IPv6 address in brackets")
    if ":" in address:
        return (f"[{address}]", None) if ip_address(address) else (None, "is not an IPv6 address")
    if DOTTED_DIGITS.fullmatch(address):
        return (address, None) if ip_address(address) else (None, "is not an IPv4 address")
    problem = host_name_problem(address)
    return (None, f"is not a host name: it {problem}") if problem else (address, None)


# --- Ports.


def port_number(value):
    """value as a port number (an integer or a string of digits, 1 to 65535), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and re.fullmatch(r"[0-9]+", value):
        value = int(value)
    return value if isinstance(value, int) and 1 <= value <= 65535 else None


def check_port(variable, value):
    if port_number(value) is None:
        raise Refused(f"{variable}: {q(value)} must be a port from 1 to 65535.")


# --- The load balancer's names and backends.

POOL = re.compile(r"[a-z][a-z0-9_]*")
INVENTORY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def check_pool(pool):
    if not POOL.fullmatch(pool):
        raise Refused(
            f"flask_gunicorn_lb_name: {q(pool)} must start with a lowercase letter and hold only "
            'lowercase letters, digits and "_": it names nginx identifiers and files.'
        )


def check_backend_name(variable, name):
    if not isinstance(name, str) or not INVENTORY_NAME.fullmatch(name):
        raise Refused(
            f"{variable}: {q(name)} must be an inventory name of letters, digits, "
            '".", "_" and "-", starting with a letter or a digit: it names a file.'
        )


def backend_servers(group, backends, own_name=None, http_port=None):
    """Each backend's server address ("address:port"), by inventory name."""
    servers = {}
    for backend in backends:
        name, address, port = backend.get("name"), backend.get("address"), backend.get("port")
        check_backend_name(f"Backend of group {q(group)}", name)
        where = f"Backend {q(name)} of group {q(group)}"
        written, problem = backend_address(address)
        if problem:
            raise Refused(
                f"{where}: its flask_gunicorn_lb_backend_address (else ansible_host, else the "
                f"inventory name) {q(address)} {problem}; it must be a host name, an IPv4 or an "
                "IPv6 address."
            )
        number = port_number(port)
        if number is None:
            raise Refused(
                f"{where}: its flask_gunicorn_http_port {q(port)} must be a port from 1 to 65535."
            )
        if name == own_name and number == port_number(http_port):
            raise Refused(
                f"{own_name} is in its own backend group {group}: flask_gunicorn_lb_http_port "
                f"must differ from its flask_gunicorn_http_port (both are {number}), or requests "
                "would come back to the load balancer."
            )
        servers[name] = f"{written}:{number}"
    return servers


# --- Paths on the host.

SHARED_PATH = re.compile(r"(?!/)(?!.*(?:^|/)\.\.(?:/|$))[A-Za-z0-9._/-]+", re.DOTALL)
WRITABLE_PATH = re.compile(r"/\S*")


def path_list(variable, value, pattern, problem, rule):
    """value as a list of paths, each of which pattern matches whole."""
    items = as_list(variable, value)
    refused = [item for item in items if not isinstance(item, str) or not pattern.fullmatch(item)]
    refuse_items(variable, value, [(item, problem) for item in refused], rule)
    return items


# --- URL paths nginx routes to the app.

# The characters the role writes into nginx's location lines: RFC 3986's unreserved ones.
SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
# A health URL's path and query: RFC 3986's pchar, "/" and "?", with well-formed percent-escapes.
HEALTH = re.compile(
    r"/(?:[A-Za-z0-9._~!$&'()*+,;=:@/-]|%[0-9A-Fa-f]{2})*"
    r"(?:\?(?:[A-Za-z0-9._~!$&'()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*)?"
)
# The server block's dot-file rule, `location ~ /\.(?!well-known/)`: nginx answers these itself.
DOT_FILES = re.compile(r"/\.(?!well-known/)")


def dot_segment(path):
    """The first segment of path that starts with "." (nginx answers it itself), or None."""
    return next((segment for segment in path.split("/") if segment.startswith(".")), None)


def check_prefix(variable, value, allow_trailing_slash=False):
    """value is a path of plain segments (empty is the site's root); refuse dot segments."""
    path = value[:-1] if allow_trailing_slash and value.endswith("/") else value
    segments = path.split("/")[1:]
    if path and (not path.startswith("/") or not all(SEGMENT.fullmatch(s) for s in segments)):
        raise Refused(
            f"{variable}: {q(value)} must be a path like /shop or /apps/shop: segments of letters, "
            'digits, ".", "_", "~" and "-", separated by single "/", and no "/" at the end.'
        )
    segment = dot_segment(path)
    if segment is not None:
        raise Refused(
            f"{variable}: {q(value)} has the path segment {q(segment)}, which starts with a dot: "
            "nginx answers every such path with 404 itself (dot files such as /.git and /.env are "
            "never served, /.well-known/ is kept for the site), so the app would never be reached."
        )
    return path


def check_static(static_url_path, static_dir):
    """The static files' location below the prefix, or "" when the app serves them itself."""
    if not static_dir:
        return ""
    path = check_prefix("flask_gunicorn_static_url_path", static_url_path, True)
    if not path:
        raise Refused(
            f"flask_gunicorn_static_url_path: {q(static_url_path)} would make nginx serve every "
            f"URL of the app from flask_gunicorn_static_dir {q(static_dir)}, so no request would "
            'reach the app; give a path such as /static, or set flask_gunicorn_static_dir to "" '
            "to leave static files to the app."
        )
    return path + "/"


def check_health(health_path, static_location):
    """The health URL is a path that curl sends as written and nginx routes to the app."""
    if not isinstance(health_path, str) or not HEALTH.fullmatch(health_path):
        raise Refused(
            f"flask_gunicorn_health_path: {q(health_path)} must be a URL path starting with "
            '"/", optionally with a query string: no white space, "#", or characters a URL must '
            "percent-encode, and percent-escapes written as %XX."
        )
    # nginx decodes percent-escapes before it matches locations and resolves dot segments.
    path = unquote(health_path.split("?", 1)[0])
    segments = path.split("/")
    if "." in segments or ".." in segments:
        raise Refused(
            f'flask_gunicorn_health_path: {q(health_path)} has a "." or ".." segment: curl and '
            "nginx resolve it, so the check would ask another URL than the one given."
        )
    if DOT_FILES.search(path):
        raise Refused(
            f"flask_gunicorn_health_path: {q(health_path)} has a path segment that starts with "
            "a dot: nginx answers every such path (but /.well-known/) with 404 itself, so the "
            "check would never reach the app."
        )
    if static_location and path.startswith(static_location):
        raise Refused(
            f"flask_gunicorn_health_path: {q(health_path)} lies below the location of the static "
            f"files {q(static_location)} (flask_gunicorn_static_url_path), which nginx serves "
            "from disk, so the check would never reach the app."
        )


def check_url_paths(url_prefix, static_url_path, static_dir, health_path):
    """Every URL path check in turn; returns the static files' location below the prefix."""
    check_prefix("flask_gunicorn_url_prefix", url_prefix)
    static_location = check_static(static_url_path, static_dir)
    check_health(health_path, static_location)
    return static_location


# --- TLS certificates and ACME.

CHALLENGE_PATH = "/.well-known/acme-challenge/"
WEBROOT = re.compile(r"/[A-Za-z0-9._/-]+")
EMAIL = re.compile(r"[^@\s]+@[A-Za-z0-9.-]+[.][A-Za-z0-9-]+")
DIRECTORY_URL = re.compile(r"https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s]*)?")


def acme_challenge_location(webroot):
    """The location serving the challenges certbot writes into webroot, as nginx reads it."""
    if not WEBROOT.fullmatch(webroot or "") or "/../" in webroot + "/":
        raise Refused(
            f"The ACME webroot {q(webroot)} is not an absolute path of letters, digits, '.', '_',"
            " '-' and '/'."
        )
    return (
        "# Managed by the flask_gunicorn roles (module flask_gunicorn_inputs): edits are lost.\n"
        "# ACME HTTP-01 challenges, answered by nginx from the host's one webroot, for every\n"
        "# server name: never passed to an app, never redirected. A ^~ prefix location, which no\n"
        "# regular expression location (dot files) and no app's location takes over.\n"
        f"location ^~ {CHALLENGE_PATH} {{\n"
        f"    root {webroot};\n"
        "    default_type text/plain;\n"
        "    try_files $uri =404;\n"
        "}\n"
    )


def check_certificate_source(
    source, tls_enabled, certificate, names, email, directory_url, role="flask_gunicorn", key=None
):
    """Refuse a certificate source its other settings do not fit; names None when refused. With
    the key's path given and TLS on, given files must hold a certificate and its key."""
    variable = f"{role}_tls_certificate_source"
    if source == "files" and not certificate:
        raise Refused(
            f'{variable} "files" needs {role}_tls_certificate and {role}_tls_certificate_key.'
        )
    if source != "files" and certificate:
        raise Refused(
            f"{variable} {q(source)} makes its own certificate: leave"
            f" {role}_tls_certificate and its key empty (got {q(certificate)})."
        )
    if source == "files" and tls_enabled and key is not None:
        if not key:
            raise Refused(f'{variable} "files" needs {role}_tls_certificate_key too.')
        check_certificate_files(role, certificate, key)
    if source != "acme":
        return
    problems = []
    if not tls_enabled or names == []:
        problems.append(
            f'{variable} "acme" needs flask_gunicorn_tls_enabled true (got {q(tls_enabled)}) and'
            " server names to certify in flask_gunicorn_server_name (got none)."
            if names == []
            else f'{variable} "acme" needs flask_gunicorn_tls_enabled true (got {q(tls_enabled)}).'
        )
    wildcards = [name for name in names or [] if "*" in name]
    if wildcards:
        problems.append(
            f"flask_gunicorn_server_name holds the wildcard {q(', '.join(wildcards))}: with"
            f' {variable} "acme" the certificate is proven over HTTP-01, which cannot prove a'
            " wildcard (ACME issues those over DNS-01 only). List the names, or bring the"
            f' wildcard certificate with {variable} "files".'
        )
    if email and not EMAIL.fullmatch(email):
        problems.append(
            f"flask_gunicorn_acme_email must be an email address or empty; got {q(email)}."
        )
    if not DIRECTORY_URL.fullmatch(directory_url or ""):
        problems.append(
            f"flask_gunicorn_acme_directory_url must be an https:// URL; got {q(directory_url)}."
        )
    if problems:
        raise Refused(" ".join(problems))


# --- What both roles write into every TLS server block and catch-all server, written once here.

MANAGED = "# Managed by the flask_gunicorn roles (module flask_gunicorn_inputs): edits are lost.\n"

# Mozilla's "intermediate" configuration (guidelines 5.7): TLS 1.2 and 1.3, forward-secret AEAD
# ciphers only, the client's cipher order, no session tickets. The DHE suites are left out, so no
# DH parameters are needed.
TLS_SETTINGS = (
    MANAGED + "# Mozilla's intermediate TLS configuration (guidelines 5.7), for every TLS server "
    "block\n# of both roles.\n"
    "ssl_protocols TLSv1.2 TLSv1.3;\n"
    "ssl_ecdh_curve X25519:prime256v1:secp384r1;\n"
    "ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
    "ECDHE-RSA-CHACHA20-POLY1305;\n"
    "ssl_prefer_server_ciphers off;\n"
    "ssl_session_timeout 1d;\n"
    "ssl_session_cache shared:FlaskGunicornTLS:10m;\n"
    "ssl_session_tickets off;\n"
)

HEADER_NAME = re.compile(r"[A-Za-z0-9-]+")
HEADER_VALUE_FORBIDDEN = re.compile(r'["\\\n\r]')


def security_headers(role, headers, hsts_max_age, tls_enabled):
    """The headers as name and value pairs, sorted by name, HSTS last with TLS."""
    variable = f"{role}_security_headers"
    if not isinstance(headers, dict):
        raise Refused(f"{variable}: {q(headers)} must be a mapping of header names to values.")
    problems = [
        (name, 'is not a header name (letters, digits and "-")')
        for name in headers
        if not isinstance(name, str) or not HEADER_NAME.fullmatch(name)
    ] + [
        (value, "holds a double quote, a backslash or a line break, which nginx would misread")
        for value in headers.values()
        if HEADER_VALUE_FORBIDDEN.search(str(value))
    ]
    refuse_items(variable, headers, problems, "Give header names and plain values.")
    age = hsts_max_age if hsts_max_age is not None else 0
    if isinstance(age, bool) or not str(age).isdigit():
        raise Refused(
            f"{role}_hsts_max_age: {q(hsts_max_age)} must be a number of seconds, 0 or more."
        )
    pairs = [{"name": name, "value": str(value)} for name, value in sorted(headers.items())]
    if tls_enabled and int(age) > 0:
        pairs.append({"name": "Strict-Transport-Security", "value": f"max-age={int(age)}"})
    return pairs


def header_lines(pairs):
    """nginx's add_header lines of the pairs, also on error answers (always)."""
    return [f'add_header {pair["name"]} "{pair["value"]}" always;' for pair in pairs]


def check_certificate_files(role, certificate, key):
    """The certificate and key files on the controller hold a PEM certificate and its own key."""
    # Imported here: only a run with given certificate files needs it (ansible-core requires it).
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_variable, key_variable = f"{role}_tls_certificate", f"{role}_tls_certificate_key"
    contents = {}
    for variable, path in ((cert_variable, certificate), (key_variable, key)):
        try:
            with open(path, "rb") as handle:
                contents[variable] = handle.read()
        except (OSError, TypeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "is not a path"
            raise Refused(
                f"{variable}: {q(path)} cannot be read on the controller ({reason})."
            ) from None
    try:
        loaded = x509.load_pem_x509_certificates(contents[cert_variable])
    except ValueError:
        raise Refused(
            f"{cert_variable}: {q(certificate)} holds no PEM certificate"
            " (-----BEGIN CERTIFICATE-----)."
        ) from None
    try:
        private_key = serialization.load_pem_private_key(contents[key_variable], password=None)
    except (ValueError, TypeError):
        # The key's bytes never go into the message: only its path.
        raise Refused(
            f"{key_variable}: {q(key)} holds no unencrypted PEM private key (nginx reads it at"
            " start, with no one to type a passphrase)."
        ) from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if private_key.public_key().public_bytes(encoding, public) != loaded[
        0
    ].public_key().public_bytes(encoding, public):
        raise Refused(
            f"{key_variable}: {q(key)} is not the key of the first certificate in"
            f" {cert_variable} {q(certificate)} (the server's own certificate comes first, then its"
            " chain)."
        )


def catch_all_servers(
    http_port, acme_snippet, https_port=None, tls_settings_file=None, certificate=None
):
    """The default servers that refuse host names no server block has (444), for one HTTP port and
    optionally one HTTPS port. Without a certificate, the HTTPS one refuses the handshake itself
    (nginx 1.19.4 and later); with one (an older nginx), it shows that certificate, then closes."""
    text = (
        MANAGED + "# Requests for host names no server block on this port serves are closed without"
        " an\n# answer (444); only ACME's challenges are answered, for any name.\n"
        "server {\n"
        f"    listen {http_port} default_server;\n"
        f"    listen [::]:{http_port} default_server;\n"
        "    server_name _;\n"
        "    access_log off;\n"
        "    server_tokens off;\n"
        f"    include {acme_snippet};\n"
        "    location / {\n"
        "        return 444;\n"
        "    }\n"
        "}\n"
    )
    if https_port is None:
        return text
    if certificate:
        refusal = (
            "    # No ssl_reject_handshake before nginx 1.19.4: a certificate, then 444.\n"
            f"    ssl_certificate {certificate['certificate']};\n"
            f"    ssl_certificate_key {certificate['key']};\n"
        )
    else:
        refusal = (
            "    # No certificate at all: a client without SNI or with an unknown name learns no"
            " name.\n    ssl_reject_handshake on;\n"
        )
    return text + (
        "server {\n"
        f"    listen {https_port} ssl default_server;\n"
        f"    listen [::]:{https_port} ssl default_server;\n"
        "    server_name _;\n"
        "    # The default server's protocols are offered before SNI picks a server block.\n"
        f"    include {tls_settings_file};\n"
        f"{refusal}"
        "    access_log off;\n"
        "    server_tokens off;\n"
        "    return 444;\n"
        "}\n"
    )


# --- The whole check.


def check(params):
    """The normalised inputs of params (the module's), or Refused naming every refused input."""
    role = params.get("role") or "flask_gunicorn"
    result, refusals = {}, []

    def attempt(key, compute, *args):
        try:
            value = compute(*args)
        except Refused as error:
            refusals.append(str(error))
        else:
            if key:
                result[key] = value

    given = {key: value for key, value in params.items() if value is not None}
    if "pool" in given:
        attempt(None, check_pool, given["pool"])
    if "backend" in given:
        attempt(None, check_backend_name, "flask_gunicorn_lb_backend", given["backend"])
    if "server_name" in given:
        attempt("server_names", server_names, f"{role}_server_name", given["server_name"])
    for port in ("http_port", "https_port"):
        if port in given:
            attempt(None, check_port, f"{role}_{port}", given[port])
    if "trusted_proxies" in given:
        variable = "flask_gunicorn_trusted_proxies"
        attempt("trusted_proxies", trusted_proxies, variable, given["trusted_proxies"])
    if "writable_paths" in given:
        attempt(
            "writable_paths",
            path_list,
            "flask_gunicorn_writable_paths",
            given["writable_paths"],
            WRITABLE_PATH,
            "is not an absolute path without white space",
            "Writable paths are absolute paths without white space, as a list or a string "
            "separated by spaces.",
        )
    if "shared_paths" in given:
        attempt(
            "shared_paths",
            path_list,
            "flask_gunicorn_shared_paths",
            given["shared_paths"],
            SHARED_PATH,
            "is not a relative path inside the project",
            'Shared paths are relative paths inside the project (letters, digits, ".", "_", "-" '
            'and "/", no ".." segment), as a list or a string separated by spaces.',
        )
    if "health_path" in given:
        attempt(
            "static_location",
            check_url_paths,
            given.get("url_prefix", ""),
            given.get("static_url_path", ""),
            given.get("static_dir", ""),
            given["health_path"],
        )
    elif "url_prefix" in given:
        attempt(None, check_prefix, "flask_gunicorn_url_prefix", given["url_prefix"])
    if "backends" in given:
        attempt(
            "backend_servers",
            backend_servers,
            given.get("backend_group", ""),
            given["backends"],
            given.get("own_name"),
            given.get("http_port"),
        )
    if "tls_certificate_source" in given:
        attempt(
            None,
            check_certificate_source,
            given["tls_certificate_source"],
            given.get("tls_enabled", False),
            given.get("tls_certificate", ""),
            # None when the server names were refused above: their problem is said once.
            result.get("server_names") if "server_name" in given else [],
            given.get("acme_email", ""),
            given.get("acme_directory_url"),
            role,
            given.get("tls_certificate_key"),
        )
    if "allowed_clients" in given:
        attempt(
            "allowed_clients", trusted_proxies, f"{role}_allowed_clients", given["allowed_clients"]
        )
    if given.get("tls_enabled"):
        result["tls_settings"] = TLS_SETTINGS
    if "security_headers" in given:
        attempt(
            "security_headers",
            security_headers,
            role,
            given["security_headers"],
            given.get("hsts_max_age"),
            given.get("tls_enabled", False),
        )
        if "security_headers" in result:
            result["security_header_lines"] = header_lines(result["security_headers"])
    if "catch_all" in given:
        attempt("catch_all", lambda spec: catch_all_servers(**spec), given["catch_all"])
    if "acme_webroot" in given:
        attempt("acme_challenge_location", acme_challenge_location, given["acme_webroot"])
    if refusals:
        raise Refused(" ".join(refusals))
    return result


# Also read by the action plugin of the same name, which runs this module in Ansible's own process:
# it reads nothing on the host, so it costs no round trip.
ARGUMENT_SPEC = {
    "role": {
        "type": "str",
        "default": "flask_gunicorn",
        "choices": ["flask_gunicorn", "flask_gunicorn_lb"],
    },
    "server_name": {"type": "raw"},
    "http_port": {"type": "raw"},
    "https_port": {"type": "raw"},
    "trusted_proxies": {"type": "raw"},
    "writable_paths": {"type": "raw"},
    "shared_paths": {"type": "raw"},
    "url_prefix": {"type": "str"},
    "static_url_path": {"type": "str", "default": ""},
    "static_dir": {"type": "str", "default": ""},
    "health_path": {"type": "str"},
    "pool": {"type": "str"},
    "backend": {"type": "str"},
    "backend_group": {"type": "str", "default": ""},
    "backends": {"type": "list", "elements": "dict"},
    "own_name": {"type": "str"},
    "tls_certificate_source": {"type": "str", "choices": ["self_signed", "files", "acme"]},
    "tls_enabled": {"type": "bool", "default": False},
    "tls_certificate": {"type": "str", "default": ""},
    "acme_email": {"type": "str", "default": ""},
    "acme_directory_url": {"type": "str"},
    "acme_webroot": {"type": "str"},
    "tls_certificate_key": {"type": "str"},
    "allowed_clients": {"type": "raw"},
    "security_headers": {"type": "raw"},
    "hsts_max_age": {"type": "raw"},
    "catch_all": {
        "type": "dict",
        "options": {
            "http_port": {"type": "int", "required": True},
            "https_port": {"type": "int"},
            "tls_settings_file": {"type": "str"},
            "acme_snippet": {"type": "str", "required": True},
            "certificate": {"type": "dict"},
        },
    },
}


def controller_result(params):
    """The task's result from the checked arguments, a refusal as a failure."""
    try:
        return {"changed": False, **check(params)}
    except Refused as error:
        return {"changed": False, "failed": True, "msg": str(error)}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = controller_result(module.params)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
