import pytest

from hello import create_app


@pytest.fixture
def app():
    return create_app("testing", test_config={"SITE_NAME": "Test site"})


@pytest.fixture
def client(app):
    return app.test_client()
