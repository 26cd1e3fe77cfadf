"""Configuration per environment, as classes loaded with app.config.from_object()."""

# Values that must never reach production: the development and testing keys.
INSECURE_SECRET_KEYS = {"dev", "test", "change-me"}
MINIMUM_SECRET_KEY_LENGTH = 16


class ConfigError(RuntimeError):
    """The configuration cannot run in the chosen environment."""


class Config:
    SITE_NAME = "Hello from Flask"
    SECRET_KEY = None
    TRUSTED_PROXY_HOPS = 1
    # /api/slow, for `make bench` only.
    BENCH_ENDPOINTS = False
    # Environments that face real users refuse to start with a missing or well-known key.
    REQUIRE_SECRET_KEY = False
    # The forms carry no CSRF token: a cross-site POST must not carry the login session.
    SESSION_COOKIE_SAMESITE = "Lax"

    @classmethod
    def check(cls, config):
        """Refuse settings that are unsafe for this environment."""
        if not cls.REQUIRE_SECRET_KEY:
            return
        key = config.get("SECRET_KEY")
        if not key or key in INSECURE_SECRET_KEYS or len(key) < MINIMUM_SECRET_KEY_LENGTH:
            raise ConfigError(
                "SECRET_KEY must be set to a random value of at least "
                f"{MINIMUM_SECRET_KEY_LENGTH} characters in this environment "
                "(environment variable SECRET_KEY or the instance folder's config.py)"
            )


class DevelopmentConfig(Config):
    DEBUG = True
    SECRET_KEY = "dev"
    # `flask run` faces the client directly: no proxy headers are trusted.
    TRUSTED_PROXY_HOPS = 0


class TestingConfig(Config):
    TESTING = True
    SECRET_KEY = "test"


class StagingConfig(Config):
    SITE_NAME = "Hello from Flask (staging)"
    REQUIRE_SECRET_KEY = True


class ProductionConfig(Config):
    REQUIRE_SECRET_KEY = True
    SESSION_COOKIE_SECURE = True


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "staging": StagingConfig,
    "production": ProductionConfig,
}
