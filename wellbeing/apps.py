from django.apps import AppConfig


class WellbeingConfig(AppConfig):
    name = "wellbeing"
    verbose_name = "Organisation and analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from config.settings import env as config_env

        from . import checks  # noqa: F401  (registers system checks)

        # Backends named in the environment, imported now that the apps are loaded: every
        # process (web, worker, beat, migrate) stops at start with one line on a typo.
        config_env.importable("EMAIL_BACKEND", settings.EMAIL_BACKEND)
