from django.apps import AppConfig


class ApiConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = "Campaigns"

    def ready(self):
        from . import checks, lookups  # noqa: F401 - registers the checks and field__any_of
