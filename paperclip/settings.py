"""The one settings module, configured from the environment.

Defaults are safe for production (DEBUG off, secure cookies) and still let `make run` work with
nothing set: SQLite in the project folder and the local file system. `.env.example` lists every
variable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), not {value!r}")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# This install's private, git-ignored files: the demo credentials and the per-install secret.
PAPERCLIP_VAR_DIR = Path(env_str("PAPERCLIP_VAR_DIR") or BASE_DIR / "var").expanduser()

SECRET_KEY_MIN_LENGTH = 50
PAPERCLIP_SECRET_KEY_ADVICE = _SECRET_KEY_ADVICE = (
    "Production must set SECRET_KEY to a random string of at least "
    f"{SECRET_KEY_MIN_LENGTH} characters, the same on every host, e.g. "
    "python -c 'import secrets; print(secrets.token_urlsafe(50))'."
)


def per_install_secret(var_dir: Path) -> str:
    """The secret kept in `var_dir/secret-key`, generated on first use (mode 0600).

    A fresh clone thus never signs with a key anyone else knows, and `make run`, the worker and
    every management command share one key. Creation is atomic: a finished file is hard-linked
    into place, so two processes starting at once agree on the first one written.
    """
    path = var_dir / "secret-key"
    try:
        if not path.exists():
            var_dir.mkdir(parents=True, exist_ok=True)
            candidate = var_dir / f".secret-key.{os.getpid()}.tmp"
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "w") as file:
                    file.write(secrets.token_urlsafe(50) + "\n")
                os.link(candidate, path)
            except FileExistsError:
                pass  # another process won; use its key
            finally:
                candidate.unlink(missing_ok=True)
        secret = path.read_text().strip()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"SECRET_KEY is not set and no per-install secret could be kept in {path} ({exc}). "
            + _SECRET_KEY_ADVICE
        ) from exc
    if len(secret) < SECRET_KEY_MIN_LENGTH:
        raise ImproperlyConfigured(
            f"{path} holds a secret of {len(secret)} characters; delete it to have a new one "
            f"generated, or set SECRET_KEY. " + _SECRET_KEY_ADVICE
        )
    return secret


# SECRET_KEY from the environment (what production sets); unset, the per-install secret in
# var/ (what `make run` and the commands on a fresh clone use; `manage.py check` warns about it
# with DEBUG off). With DEBUG off a short key is refused: it could be guessed.
SECRET_KEY = env_str("SECRET_KEY")
PAPERCLIP_SECRET_KEY_FROM_VAR = not SECRET_KEY
if PAPERCLIP_SECRET_KEY_FROM_VAR:
    SECRET_KEY = per_install_secret(PAPERCLIP_VAR_DIR)
elif not DEBUG and len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH:
    raise ImproperlyConfigured(
        f"SECRET_KEY is {len(SECRET_KEY)} characters long; with DEBUG off it must have at least "
        f"{SECRET_KEY_MIN_LENGTH}. " + _SECRET_KEY_ADVICE
    )
# After a rotation, the old keys: what they signed (sessions, run tokens) stays valid meanwhile.
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", [])

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    # The board's theme (DESIGN §11): before django.contrib.admin, whose templates it overrides.
    "unfold",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "django_fsm",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks",
    "django_tasks_db",
    "paperclip",
    "companies",
    "agents",
    "issues",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # /api answers JSON, never an HTML page: refuses a bad Host or a NUL in the URL before any
    # query, and renders what a view (or its transaction) raised.
    "paperclip.api.middleware.ApiEdgeMiddleware",
    # Counts the failed authentications the bearer classes noted, once the request's
    # transaction is over (a 401 rolls it back): paperclip.api.auth_failures.
    "paperclip.api.auth_failures.AuthFailureMiddleware",
    # ETag on every API GET answered 200, If-None-Match → 304 (inside the edge, so a 304 still
    # carries X-Request-Id and the id is never part of what is hashed).
    "paperclip.conditional.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Messages wait in the session, not in a cookie: a webhook's signing secret is shown once in one.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

ROOT_URLCONF = "paperclip.urls"
WSGI_APPLICATION = "paperclip.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# Every request is one transaction: a request that fails changes nothing.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side binding lets PostgreSQL prepare the statements a request repeats (checkout,
    # inbox) instead of planning them anew; turn off behind a transaction-mode pgbouncer.
    DATABASES["default"]["OPTIONS"] = {
        "server_side_binding": env_bool("DATABASE_SERVER_SIDE_BINDING", True),
        "prepare_threshold": 5,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite locks the whole file; wait for the writer instead of failing at once, and take the
    # write lock at BEGIN so two writers never deadlock upgrading a read lock.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0

AUTH_USER_MODEL = "companies.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")
# Uploaded files: the local file system by default; any S3-compatible store with
# PAPERCLIP_STORAGE=s3 and the AWS_* variables (AWS_S3_ENDPOINT_URL for MinIO, R2, ...).
PAPERCLIP_STORAGE = env_str("PAPERCLIP_STORAGE", "filesystem")
if PAPERCLIP_STORAGE == "s3":
    DEFAULT_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME"),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
elif PAPERCLIP_STORAGE == "filesystem":
    DEFAULT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ImproperlyConfigured("PAPERCLIP_STORAGE must be 'filesystem' or 's3'")
STORAGES = {
    "default": DEFAULT_STORAGE,
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security: safe by default. TLS usually ends at the load balancer, so the HTTPS redirect is
# opt-in and the proxy header is honoured only when configured.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# A load balancer's health check inside the network speaks plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^api/health/?$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Secure cookies unless explicitly turned off for plain-HTTP local use (make run does that).
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# The largest request body (JSON or form) accepted, in bytes; more answers 413. Uploads are
# limited by PAPERCLIP_ATTACHMENT_MAX_BYTES instead (a file part does not count here).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("PAPERCLIP_MAX_BODY_BYTES", 2_621_440)  # 2.5 MiB

REST_FRAMEWORK = {
    # Token classes first: an unauthenticated request gets 401 with `WWW-Authenticate: Bearer`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "agents.authentication.AgentKeyAuthentication",
        "agents.authentication.RunTokenAuthentication",
        "companies.authentication.BoardTokenAuthentication",
        "companies.authentication.BoardSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["paperclip.api.permissions.IsActor"],
    "DEFAULT_RENDERER_CLASSES": ["paperclip.api.renderers.JSONRenderer"],
    # DRF's parsers, refusing NUL characters and JSON nested too deeply (paperclip.api.parsers).
    "DEFAULT_PARSER_CLASSES": [
        "paperclip.api.parsers.JSONParser",
        "paperclip.api.parsers.MultiPartParser",
        "paperclip.api.parsers.FormParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "paperclip.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "paperclip.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "COERCE_DECIMAL_TO_STRING": False,
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Paperclip API",
    "DESCRIPTION": "The control plane where AI agents and their human board share a company's "
    "work as issues.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["paperclip.api.schema.canonical_paths"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "paperclip.api.schema.closed_request_bodies",
        "paperclip.api.schema.uuid_ids",
    ],
    "GET_LIB_DOC_EXCLUDES": "paperclip.api.schema.lib_doc_excludes",
    "ENUM_NAME_OVERRIDES": {
        "IssueStatusEnum": "issues.models.Status",
        "AgentStatusEnum": "agents.models.Agent.Status",
        "AgentRoleEnum": "agents.models.Agent.Role",
        "CompanyStatusEnum": "companies.models.Company.Status",
        "MembershipRoleEnum": "companies.models.Membership.Role",
        "RunStatusEnum": "agents.models.HeartbeatRun.Status",
        "RunSourceEnum": "agents.models.HeartbeatRun.Source",
        "ApprovalStatusEnum": "issues.models.Approval.Status",
        "GoalStatusEnum": "issues.models.Goal.Status",
        "ProjectStatusEnum": "issues.models.Project.Status",
        "ActorTypeEnum": "agents.v1.whoami.ACTOR_TYPES",
        "ApprovalTypeEnum": "issues.models.Approval.Type",
        "CostGroupByEnum": "issues.v1.costs.GROUP_BY",
    },
}

# After signing in without a `next`, the board lands on its dashboard.
LOGIN_REDIRECT_URL = "/admin/"

# The board's theme (DESIGN §11): our name, our navigation (paperclip.board), no CDN.
UNFOLD = {
    "SITE_TITLE": "Paperclip",
    "SITE_HEADER": "Paperclip",
    "SITE_SUBHEADER": "The board",
    "SITE_SYMBOL": "attach_file",
    "SITE_FAVICONS": [
        {"rel": "icon", "type": "image/svg+xml", "href": lambda request: static("paperclip.svg")}
    ],
    "SCRIPTS": [lambda request: static("board/keys.js")],  # the keyboard: "?" lists it
    "SHOW_HISTORY": False,  # the activity log is the history, with every writer in it
    "SHOW_VIEW_ON_SITE": False,
    "DASHBOARD_CALLBACK": "paperclip.board.dashboard_callback",
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "paperclip.board.navigation",
    },
}

# In-process only, on purpose: each process bounds how long it trusts a key by
# PAPERCLIP_AUTH_CACHE_SECONDS, and a shared cache would need invalidation across hosts.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "auth": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "paperclip-auth",
        "OPTIONS": {"MAX_ENTRIES": 10_000},
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# Paperclip's own knobs.
PAPERCLIP_LEASE_SECONDS = env_int("PAPERCLIP_LEASE_SECONDS", 300)
# Lifetime of the run token a wakeup hands out (a bearer credential bound to agent and run).
PAPERCLIP_RUN_TOKEN_SECONDS = env_int("PAPERCLIP_RUN_TOKEN_SECONDS", 3600)
# How long a process trusts what an agent API key resolved to (the key and its agent) before
# reading it again: a revoked key, a paused or terminated agent is refused by every process
# within this many seconds (at once by the process that made the change). 0 reads every time.
# The same bound applies to which addresses and key prefixes are over their failure limit.
PAPERCLIP_AUTH_CACHE_SECONDS = env_int("PAPERCLIP_AUTH_CACHE_SECONDS", 5)
# Rate limits on failed authentications (paperclip.api.auth_failures): once a client address,
# or a key prefix (a token's first 12 characters) from any address, has failed this many times
# within the window, its bearer tokens answer 429 with Retry-After until the window ends, valid
# ones included. Counted in the database, so the limits hold across app servers. 0 turns a
# limit off (a window of 0 turns both off).
PAPERCLIP_AUTH_FAILURE_LIMIT = env_int("PAPERCLIP_AUTH_FAILURE_LIMIT", 20)
PAPERCLIP_AUTH_FAILURE_PREFIX_LIMIT = env_int("PAPERCLIP_AUTH_FAILURE_PREFIX_LIMIT", 10)
PAPERCLIP_AUTH_FAILURE_WINDOW_SECONDS = env_int("PAPERCLIP_AUTH_FAILURE_WINDOW_SECONDS", 300)
# How many proxies (load balancers) in front of the app servers append to X-Forwarded-For: the
# client's address is the one the outermost of them saw. 0 ignores the header (never trust it
# blindly: a client can write anything there).
PAPERCLIP_TRUSTED_PROXIES = env_int("PAPERCLIP_TRUSTED_PROXIES", 0)
PAPERCLIP_API_URL = env_str("PAPERCLIP_API_URL", "http://127.0.0.1:3100")
# Attachments: the largest upload, and the content types accepted (DESIGN §6). html and svg
# may be added by an operator; they are then always served as downloads.
PAPERCLIP_ATTACHMENT_MAX_BYTES = env_int("PAPERCLIP_ATTACHMENT_MAX_BYTES", 10 * 1024 * 1024)
PAPERCLIP_ATTACHMENT_TYPES = env_list(
    "PAPERCLIP_ATTACHMENT_TYPES",
    [
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
        "application/pdf",
        "text/plain",
        "text/markdown",
        "text/csv",
        "application/json",
        "application/zip",
    ],
)

# Wake delivery to HTTP agents: per-attempt timeout, first retry delay (doubling), attempts.
PAPERCLIP_WAKE_TIMEOUT_SECONDS = env_int("PAPERCLIP_WAKE_TIMEOUT_SECONDS", 10)
PAPERCLIP_WAKE_RETRY_BASE_SECONDS = env_int("PAPERCLIP_WAKE_RETRY_BASE_SECONDS", 5)
PAPERCLIP_WAKE_MAX_ATTEMPTS = env_int("PAPERCLIP_WAKE_MAX_ATTEMPTS", 5)
# A webhook delivery attempt that gets no answer within this many seconds (per connect or read)
# has failed (DESIGN §9), so a receiver that never answers cannot stall the worker.
PAPERCLIP_WEBHOOK_TIMEOUT_SECONDS = env_int("PAPERCLIP_WEBHOOK_TIMEOUT_SECONDS", 10)
# Wake URLs and webhooks may target private and loopback addresses (paperclip.targets); on by
# default only with DEBUG (`make run`). Link-local (cloud metadata) is refused whatever this says.
PAPERCLIP_WEBHOOK_ALLOW_PRIVATE = env_bool("PAPERCLIP_WEBHOOK_ALLOW_PRIVATE", DEBUG)

# Background work (wake delivery) through Django's task interface; the database backend's
# worker is `python manage.py db_worker`. Swappable for any django-tasks backend.
TASKS = {
    "default": {
        "BACKEND": env_str("PAPERCLIP_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        # `agents`: process-adapter runs (agents.process), long, kept off deliveries' queue.
        "QUEUES": ["default", "agents"],
    }
}

# Where `bootstrap_demo` keeps the demo logins and keys it prints (git-ignored; unset:
# demo-credentials.json in PAPERCLIP_VAR_DIR, beside the per-install secret).
PAPERCLIP_DEMO_CREDENTIALS = env_str("PAPERCLIP_DEMO_CREDENTIALS", "")
