#!/usr/bin/python
"""Make a self-signed TLS certificate and its key on the host, once."""

from __future__ import annotations

DOCUMENTATION = r"""
module: flask_gunicorn_self_signed
short_description: Make a self-signed certificate and its key on the host, once, for both roles
description:
  - When O(certificate) does not exist, makes a new RSA 2048 key and a self-signed SHA-256
    certificate for O(names) (the first is the subject's common name, all are subject alternative
    names) with C(openssl req), valid O(days) days. Both are written under temporary names in
    their directories and renamed into place, the key first (mode 0600, owned by the user running
    the module). A run killed in between leaves no certificate, and the next run makes both anew.
  - An existing certificate is kept as it is, whatever it holds (the roles replace it by removing
    it). The key never leaves the host and is never returned.
  - In check mode nothing is written; the module reports whether it would make the pair.
options:
  certificate: {description: Absolute path of the certificate., type: path, required: true}
  key: {description: Absolute path of the private key., type: path, required: true}
  names:
    description: Host names the certificate is for; a leading C(*.) is kept (a wildcard name).
    type: list
    elements: str
    required: true
  days:
    description: Days of validity; Mozilla's intermediate profile allows at most 366.
    type: int
    default: 365
author: flask-gunicorn project
"""

EXAMPLES = r"""
- name: Make the load balancer's self-signed certificate
  flask_gunicorn_self_signed:
    certificate: /etc/nginx/tls/flask_gunicorn_lb_web/certificate.pem
    key: /etc/nginx/tls/flask_gunicorn_lb_web/key.pem
    names: [shop.example.com, www.shop.example.com]
"""

RETURN = r"""
certificate:
  description: The certificate's path.
  type: str
  returned: always
"""

import os
import subprocess
import tempfile

from ansible.module_utils.basic import AnsibleModule


def openssl_argv(names, days, key_file, certificate_file):
    """The openssl command that makes the key and the certificate for names."""
    return [
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-sha256",
        "-days",
        str(days),
        "-nodes",
        "-subj",
        f"/CN={names[0]}",
        "-addext",
        "subjectAltName=" + ",".join(f"DNS:{name}" for name in names),
        "-keyout",
        key_file,
        "-out",
        certificate_file,
    ]


def make_pair(certificate, key, names, days):
    """Write the key, then the certificate, each renamed into place; None, or why it failed."""
    made = []
    try:
        old_umask = os.umask(0o077)
        try:
            key_tmp = tempfile.mkstemp(prefix=".key.", dir=os.path.dirname(key))
            certificate_tmp = tempfile.mkstemp(prefix=".cert.", dir=os.path.dirname(certificate))
        finally:
            os.umask(old_umask)
        for descriptor, path in (key_tmp, certificate_tmp):
            os.close(descriptor)
            made.append(path)
        result = subprocess.run(
            openssl_argv(names, days, key_tmp[1], certificate_tmp[1]),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            return f"openssl failed: {result.stderr.strip()}"
        os.chmod(key_tmp[1], 0o600)
        os.chmod(certificate_tmp[1], 0o644)
        os.rename(key_tmp[1], key)
        os.rename(certificate_tmp[1], certificate)
        made.clear()
        return None
    finally:
        for path in made:
            if os.path.lexists(path):
                os.unlink(path)


def main():
    module = AnsibleModule(
        argument_spec={
            "certificate": {"type": "path", "required": True},
            "key": {"type": "path", "required": True},
            "names": {"type": "list", "elements": "str", "required": True},
            "days": {"type": "int", "default": 365},
        },
        supports_check_mode=True,
    )
    params = module.params
    if not params["names"]:
        module.fail_json(msg="names must hold at least one host name.")
    result = {"changed": False, "certificate": params["certificate"]}
    if os.path.lexists(params["certificate"]):
        module.exit_json(**result)
    result["changed"] = True
    if not module.check_mode:
        problem = make_pair(params["certificate"], params["key"], params["names"], params["days"])
        if problem:
            module.fail_json(msg=problem, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
