"""One settings module, driven by the environment (see .env.example).

Embedded defaults need no other server: SQLite, private files under var/, the in-memory
channel layer and tasks run in-process. DATABASE_URL, REDIS_URL and AWS_STORAGE_BUCKET_NAME
switch to PostgreSQL, Redis (Celery broker, channels-redis, cache) and S3.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from moderation_site import logs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# Signs sessions, CSRF tokens and password resets. A deployment (DEBUG off) must set its own;
# only a local trial with DEBUG on (`make run`) falls back to this published development key.
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG off the platform does not start without a "
            "secret key of its own: set SECRET_KEY (environment or .env) to a long random "
            "string, e.g. the output of: python3 -c 'import secrets; "
            "print(secrets.token_urlsafe(50))'. For a local trial, `make run` runs with "
            "DEBUG=true and needs no key."
        )
    SECRET_KEY = "django-insecure-development-key-for-debug-only-never-in-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Pages that may open our websockets: scheme, host and port exactly (moderation_site.origins).
# By default the CSRF-trusted origins and, for a local trial (DEBUG, or no REDIS_URL: the
# embedded defaults), `make run`'s http://127.0.0.1:$(PORT) and http://localhost:$(PORT).
_RUN_PORT = env.int("RUN_PORT", default=8000)  # `make run` passes its PORT
_LOCAL_ORIGINS = [f"http://127.0.0.1:{_RUN_PORT}", f"http://localhost:{_RUN_PORT}"]
WEBSOCKET_ALLOWED_ORIGINS = env.list(
    "WEBSOCKET_ALLOWED_ORIGINS",
    default=[
        *CSRF_TRUSTED_ORIGINS,
        *(_LOCAL_ORIGINS if DEBUG or not env("REDIS_URL", default="") else []),
    ],
)

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "django_celery_beat",
    "channels",
    "accounts",
    "uploads",
    "hashing",
    "review",
    "api",
    "chatbot",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "moderation_site.errors.JsonErrorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "moderation_site.errors.CommonMiddleware",  # Django's, see there
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.EndBannedSessionsMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
CSRF_FAILURE_VIEW = "moderation_site.errors.csrf_failure"

ROOT_URLCONF = "moderation_site.urls"
WSGI_APPLICATION = "moderation_site.wsgi.application"
ASGI_APPLICATION = "moderation_site.asgi.application"

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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (daphne, in-process tasks) share the file: wait instead of failing;
    # WAL lets readers run beside the writer and makes each commit far cheaper.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# The pool's size bounds a web process's queries in flight: beyond the database's cores they
# queue inside PostgreSQL, where each costs more CPU. 32 moderators claiming without pause
# through 2 processes on a 2-core host: p99 29-57 ms with 4 each, 56-83 ms with 10 (lower
# in all 8 paired runs), and PostgreSQL's CPU per claim lower too (bench/claims.py,
# "served"; docs/deploy.md: how to size it). A request holds its connection until it ends;
# a wait for a verdict gives it back between polls.
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=4)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_POOL", default=True
):
    # Under ASGI views run in threads lent to one request at a time, as many as there are
    # requests at once (moderation_site.asgi.RequestThreads): a connection kept per thread
    # with CONN_MAX_AGE would stay open in every idle one, and without either each request
    # opened one (~3 ms here, as much as a whole lookup; bench/api_lookup.py). psycopg-pool
    # keeps them per process (Django's OPTIONS["pool"]; it requires CONN_MAX_AGE 0).
    # Celery's prefork children close their inherited pool at start and after each task
    # (celery.fixups), so one connection (min_size 1) is opened per task there, as without
    # a pool.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "uploads:upload"
LOGOUT_REDIRECT_URL = "login"

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
STATICFILES_DIRS = [BASE_DIR / "static"]
# `manage.py collectstatic` fills it; WhiteNoise serves it from the app process (daphne does
# not serve static files), the files it found when the process started.
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(VAR_DIR / "static")))

# Originals are private: never under a served folder, read through permission-checked views.
PRIVATE_MEDIA_ROOT = Path(env("PRIVATE_MEDIA_ROOT", default=str(VAR_DIR / "private")))
AWS_STORAGE_BUCKET_NAME = env("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    AWS_S3_ENDPOINT_URL = env("AWS_S3_ENDPOINT_URL", default=None)
    AWS_S3_REGION_NAME = env("AWS_S3_REGION_NAME", default=None)
    AWS_DEFAULT_ACL = "private"
    AWS_QUERYSTRING_AUTH = True
    AWS_S3_FILE_OVERWRITE = False
    default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"location": env("AWS_LOCATION", default="originals")},
    }
else:
    default_storage = {
        "BACKEND": "uploads.storage.PrivateFileSystemStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT},
    }
STORAGES = {
    "default": default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}

REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    from moderation_site.cache import channel_layer_host

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [channel_layer_host(REDIS_URL)]},
        }
    }
    # Django's Redis cache, with one client per process instead of one per request
    # (moderation_site.cache: under ASGI each request opened a connection).
    CACHES = {"default": {"BACKEND": "moderation_site.cache.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CELERY_BROKER_URL = "memory://localhost/"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ACKS_LATE = True
# A worker child killed mid-task (SIGKILL, out of memory): its message goes back to the
# queue instead of being acknowledged as failed; a whole worker killed: Redis hands its
# unacknowledged messages out again after the visibility timeout (longer than any
# analysis). An analysis runs at most once to its record (review.pipeline checks the
# item is still processing under a row lock), and uploads.requeue_stuck_items catches
# the rest every 5 minutes.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=900)
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-items": {"task": "uploads.requeue_stuck_items", "schedule": 300.0},
    "release-expired-claims": {"task": "review.release_expired_claims", "schedule": 30.0},
    "requeue-slack-events": {"task": "chatbot.requeue_events", "schedule": 120.0},
    "retry-slack-removals": {"task": "chatbot.retry_removals", "schedule": 60.0},
    "forget-slack-event-payloads": {
        "task": "chatbot.forget_event_payloads",
        "schedule": 86400.0,
    },
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ActiveAuthorTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env("API_THROTTLE_RATE", default="600/minute")},
    "EXCEPTION_HANDLER": "moderation_site.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Moderation API",
    "VERSION": "1.0.0",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "AnalysisDecisionEnum": "api.serializers.DECISION_CHOICES",
        "CompatDecisionEnum": "api.serializers.COMPAT_DECISIONS",
        "ModeratorDecisionEnum": "review.models.Decision.Verdict",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "moderation_site.openapi.add_error_responses",
    ],
}

# Intake limits; the upload page and every API repeat them in their messages.
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", default=20 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env.int("UPLOAD_MAX_PIXELS", default=50_000_000)
UPLOAD_MAX_FILES = env.int("UPLOAD_MAX_FILES", default=20)
# Frames of an animation at most (refused above), and how many of them the analysis looks
# at: all up to 8, else 8 spread evenly from first to last (~20 ms each with NudeNet).
UPLOAD_MAX_FRAMES = env.int("UPLOAD_MAX_FRAMES", default=1000)
ANIMATION_SAMPLE_FRAMES = env.int("ANIMATION_SAMPLE_FRAMES", default=8)
# Sides and proportions (refused above, from the header). 30,000 px: a 1,200 px wide page
# captured 25 screens long; 25 to 1: above long screenshots (~1:20) and panoramas (~10:1),
# below strips that no classifier can see (its 320 px input would hold 12 px of picture).
UPLOAD_MAX_SIDE = env.int("UPLOAD_MAX_SIDE", default=30_000)
UPLOAD_MAX_ASPECT_RATIO = env.float("UPLOAD_MAX_ASPECT_RATIO", default=25.0)
# Video (uploads.video): the policy's size cap (Admin → Policy, 200 MB by default) can only
# be lowered below VIDEO_MAX_BYTES, which the server's body limit makes room for. The decode
# is bounded by frames (10 min at 60 frames/s) and by seconds of work.
VIDEO_MAX_BYTES = env.int("VIDEO_MAX_BYTES", default=200 * 1024 * 1024)
VIDEO_MAX_FRAMES = env.int("VIDEO_MAX_FRAMES", default=36_000)
VIDEO_DECODE_TIMEOUT_S = env.float("VIDEO_DECODE_TIMEOUT_S", default=300.0)
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The largest request body the web server reads (moderation_site.server refuses more with a
# 413 before reading it; set the reverse proxy's limit to the same, README): a full batch
# of files plus 1 MB for the other fields and the multipart framing. 401 MB by default.
REQUEST_MAX_BYTES = env.int(
    "REQUEST_MAX_BYTES",
    default=max(
        DATA_UPLOAD_MAX_MEMORY_SIZE,
        UPLOAD_MAX_BYTES * UPLOAD_MAX_FILES + 1024 * 1024,
        VIDEO_MAX_BYTES + 1024 * 1024,  # one video of the largest size
    ),
)
URL_FETCH_TIMEOUT = env.float("URL_FETCH_TIMEOUT", default=10.0)
# CIDRs allowed despite the SSRF guard (tests only; leave empty in production).
URL_FETCH_ALLOWED_NETWORKS = env.list("URL_FETCH_ALLOWED_NETWORKS", default=[])

# The public API's analyses (api.analyses): how long ?wait= may hold a request for the
# verdict (one item; a batch). How many items a batch takes is the policy's (admin).
API_WAIT_MAX_S = env.float("API_WAIT_MAX_S", default=5.0)
API_BATCH_WAIT_MAX_S = env.float("API_BATCH_WAIT_MAX_S", default=30.0)
# How long each process keeps a valid API key's row (api.authentication): a revoked key or
# a deactivated client stops within this many seconds on every other process (at once on
# the one that made the change).
API_KEY_CACHE_S = env.float("API_KEY_CACHE_S", default=2.0)
# Client callbacks (api.callbacks): seconds a client's server has to answer an attempt, and
# the seconds before each retry after a failed one: 10 s, 1 min, 5 min, 15 min, 30 min, 1 h,
# 2 h, 4 h, 8 h, then the rest of the day (11 attempts over 24 hours); then it gives up.
CALLBACK_TIMEOUT = env.float("CALLBACK_TIMEOUT", default=10.0)
CALLBACK_RETRY_SCHEDULE = tuple(
    env.list(
        "CALLBACK_RETRY_SCHEDULE",
        cast=int,
        default=[10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 29330],
    )
)
if any(seconds <= 0 for seconds in CALLBACK_RETRY_SCHEDULE):
    raise ImproperlyConfigured("CALLBACK_RETRY_SCHEDULE is seconds > 0, e.g. 10,60,300.")

# The Slack bot (chatbot/, README "Slack"). The app's signing secret and OAuth client (for
# installs through /slack/install/; a workspace configured in admin carries its own secret);
# the Web API's address (a fake Slack on loopback in the tests); the hosts files are
# downloaded from, with the bot token and through the SSRF guard (a bare host: https on
# 443; an origin spells out scheme and port); the size cap of one file (5 MiB).
SLACK_SIGNING_SECRET = env("SLACK_SIGNING_SECRET", default="")
SLACK_CLIENT_ID = env("SLACK_CLIENT_ID", default="")
SLACK_CLIENT_SECRET = env("SLACK_CLIENT_SECRET", default="")
SLACK_API_URL = env("SLACK_API_URL", default="https://slack.com/api/")
SLACK_FILE_HOSTS = env.list("SLACK_FILE_HOSTS", default=["files.slack.com"])
SLACK_MAX_FILE_BYTES = env.int("SLACK_MAX_FILE_BYTES", default=5 * 1024 * 1024)
SLACK_API_TIMEOUT = env.float("SLACK_API_TIMEOUT", default=10.0)
# A handled event's payload (a member's words, file names) is kept this many days for
# looking into a report, then emptied by beat (chatbot.forget_event_payloads); the row
# stays: it dedupes a late retry and says what was done.
SLACK_EVENT_PAYLOAD_DAYS = env.int("SLACK_EVENT_PAYLOAD_DAYS", default=30)
# Fernet keys (comma-separated: the first encrypts, all decrypt, for rotation) sealing the
# workspaces' tokens and secrets at rest; empty: one derived from SECRET_KEY.
SLACK_ENCRYPTION_KEY = env.list("SLACK_ENCRYPTION_KEY", default=[])

# Classifiers: the policy (admin) picks which providers run; these are the process's limits.
CLASSIFIER_TIMEOUT_S = env.float("CLASSIFIER_TIMEOUT_S", default=30.0)  # all providers, per item
CLASSIFIER_WORKERS = env.int("CLASSIFIER_WORKERS", default=4)  # provider threads per process
# Worker processes load the policies' classifiers as they start (review.tasks).
CLASSIFIERS_WARM_AT_START = env.bool("CLASSIFIERS_WARM_AT_START", default=True)
NUDENET_THREADS = env.int("NUDENET_THREADS", default=1)  # onnxruntime intra-op threads
TEXT_MODEL_THREADS = env.int("TEXT_MODEL_THREADS", default=1)  # the text model's, the same
# Text items (uploads.text): characters of a post, earlier messages of its thread context.
TEXT_MAX_CHARS = env.int("TEXT_MAX_CHARS", default=10_000)
TEXT_MAX_CONTEXT = env.int("TEXT_MAX_CONTEXT", default=20)
AWS_REKOGNITION_REGION = env("AWS_REKOGNITION_REGION", default="us-east-1")
AWS_REKOGNITION_MIN_CONFIDENCE = env.float("AWS_REKOGNITION_MIN_CONFIDENCE", default=50.0)

# HTTPS. With DEBUG off the defaults are those of a deployment served over TLS; `manage.py
# check --deploy --fail-level WARNING` passes with .env.example's values (CI runs it). Behind
# a proxy that ends TLS, set SECURE_PROXY_SSL_HEADER (else the SSL redirect loops); a trial
# on plain http with DEBUG off sets SECURE_SSL_REDIRECT and the two *_COOKIE_SECURE to false.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# e.g. HTTP_X_FORWARDED_PROTO,https: the header the proxy sets, and its value on https.
_proxy_ssl_header = [h.strip() for h in env.list("SECURE_PROXY_SSL_HEADER", default=[])]
_proxy_ssl_header = [h for h in _proxy_ssl_header if h]
if _proxy_ssl_header and len(_proxy_ssl_header) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER takes a header and its value, e.g. "
        "HTTP_X_FORWARDED_PROTO,https (a header your proxy always sets, never one a client's "
        "request passes through)."
    )
SECURE_PROXY_SSL_HEADER = tuple(_proxy_ssl_header) or None
# HSTS is sent on https responses only. Subdomains and preload are commitments for the whole
# domain (hstspreload.org), so they are off unless set.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=SESSION_COOKIE_SECURE)
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Every line of an analysis carries its item and request ids (moderation_site.logs);
# LOG_FORMAT=json writes one JSON object a line for a log collector.
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "moderation_site.logs.ContextFilter"}},
    "formatters": {
        "text": {"format": logs.TEXT_FORMAT},
        "json": {"()": "moderation_site.logs.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["context"],
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# /metrics (moderation_site.metrics): a scraper sends "Authorization: Bearer <token>" or
# comes from one of these networks (CIDR); with neither set the endpoint answers 404.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
