import pytest


def test_index_renders_the_configured_site_name(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"<h1>Test site</h1>" in response.data


def test_named_page_renders(client):
    response = client.get("/about")
    assert response.status_code == 200
    assert b"templates/pages/about.html" in response.data


@pytest.mark.parametrize(
    "path",
    ["/missing", "/About", "/..%2Fbase", "/%2e%2e%2fbase", "/base", "/pages/about", "/about.html"],
)
def test_unknown_or_crafted_pages_are_404(client, path):
    assert client.get(path).status_code == 404


def test_static_files_are_served(client):
    response = client.get("/static/style.css")
    assert response.status_code == 200
    assert response.mimetype == "text/css"


def test_healthz_reports_status_version_and_environment(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "version": "1.0.0", "environment": "testing"}


def test_proxy_headers_from_one_trusted_hop_are_applied(client):
    response = client.get(
        "/api/request",
        headers={"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"},
        environ_base={"REMOTE_ADDR": ""},
    )
    data = response.get_json()
    assert data["remote_addr"] == "198.51.100.7"
    assert data["scheme"] == "https"


def test_only_the_last_hop_is_trusted(client):
    # A forged X-Forwarded-For cannot hide the client: nginx appends the real address.
    response = client.get("/api/request", headers={"X-Forwarded-For": "203.0.113.1, 198.51.100.7"})
    assert response.get_json()["remote_addr"] == "198.51.100.7"


def test_prefix_from_the_proxy_is_the_script_root(client):
    response = client.get("/", headers={"X-Forwarded-Prefix": "/hello"})
    assert b'href="/hello/static/style.css"' in response.data


def test_slow_endpoint_is_off_by_default(client):
    assert client.get("/api/slow").status_code == 404


def test_slow_endpoint_waits_within_bounds(app):
    app.config["BENCH_ENDPOINTS"] = True
    response = app.test_client().get("/api/slow?ms=5000")
    assert response.get_json() == {"slept_ms": 1000}
