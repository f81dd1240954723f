from django.apps import AppConfig


class ApiConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "api"
    verbose_name = "Campaigns"

    def ready(self):
        # Registers the system checks, the field__any_of lookup and the OpenAPI extensions.
        from . import checks, lookups, schema  # noqa: F401
