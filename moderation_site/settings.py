"""One settings module, driven by the environment (see .env.example).

Embedded defaults need no other server: SQLite, private files under var/, the in-memory
channel layer and tasks run in-process. DATABASE_URL, REDIS_URL and AWS_STORAGE_BUCKET_NAME
switch to PostgreSQL, Redis (Celery broker, channels-redis, cache) and S3.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "moderation_site.errors.JsonErrorMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
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
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
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
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-items": {"task": "uploads.requeue_stuck_items", "schedule": 300.0},
    "release-expired-claims": {"task": "review.release_expired_claims", "schedule": 30.0},
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
DATA_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
# The largest request body the web server reads (moderation_site.server refuses more with a
# 413 before reading it; set the reverse proxy's limit to the same, README): a full batch
# of files plus 1 MB for the other fields and the multipart framing. 401 MB by default.
REQUEST_MAX_BYTES = env.int(
    "REQUEST_MAX_BYTES",
    default=max(DATA_UPLOAD_MAX_MEMORY_SIZE, UPLOAD_MAX_BYTES * UPLOAD_MAX_FILES + 1024 * 1024),
)
URL_FETCH_TIMEOUT = env.float("URL_FETCH_TIMEOUT", default=10.0)
# CIDRs allowed despite the SSRF guard (tests only; leave empty in production).
URL_FETCH_ALLOWED_NETWORKS = env.list("URL_FETCH_ALLOWED_NETWORKS", default=[])

# The public API's analyses (api.analyses): how long ?wait= may hold a request for the
# verdict (one item; a batch), and how many items a batch takes (400 above).
API_WAIT_MAX_S = env.float("API_WAIT_MAX_S", default=5.0)
API_BATCH_WAIT_MAX_S = env.float("API_BATCH_WAIT_MAX_S", default=30.0)
API_BATCH_MAX_ITEMS = env.int("API_BATCH_MAX_ITEMS", default=50)

# Classifiers: the policy (admin) picks which providers run; these are the process's limits.
CLASSIFIER_TIMEOUT_S = env.float("CLASSIFIER_TIMEOUT_S", default=30.0)  # all providers, per item
CLASSIFIER_WORKERS = env.int("CLASSIFIER_WORKERS", default=4)  # provider threads per process
NUDENET_THREADS = env.int("NUDENET_THREADS", default=1)  # onnxruntime intra-op threads
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

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
