from django.apps import AppConfig


class ApiConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = "Campaigns"

    def ready(self):
        from . import lookups  # noqa: F401 - registers field__any_of
