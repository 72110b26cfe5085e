"""The embedded default: SQLite and a file-system Celery broker, no server needed."""

from . import env as config_env
from .base import *  # noqa: F403
from .base import DATA_DIR, database_settings

DEBUG = config_env.boolean("DEBUG", True)
SECRET_KEY = config_env.read("SECRET_KEY", "") or "pulse-local-development-only-not-secret"
PULSE_TOKEN_HMAC_KEY = config_env.read("PULSE_TOKEN_HMAC_KEY", "") or SECRET_KEY

DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = database_settings(f"sqlite:///{DATA_DIR / 'pulse.sqlite3'}")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # SQLite cannot build the aggregate table's covering unique index
    # (``teamaggregate_one_per_cell``: INCLUDE columns), so Django leaves it out there and
    # says so (W039).  On SQLite the rule rests on the close alone, which writes a result's
    # cells once, in one transaction; PostgreSQL, the production database, enforces it.
    SILENCED_SYSTEM_CHECKS = ["models.W039"]

_broker_dir = DATA_DIR / "broker"
_broker_dir.mkdir(parents=True, exist_ok=True)
CELERY_BROKER_URL = config_env.read("CELERY_BROKER_URL", "filesystem://") or "filesystem://"
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(DATA_DIR / "broker-processed"),
        "store_processed": False,
        "control_folder": str(DATA_DIR / "broker-control"),
    }

EMAIL_BACKEND = config_env.dotted_path(
    "EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend"
)
EMAIL_FILE_PATH = str(DATA_DIR / "outbox-mail")
