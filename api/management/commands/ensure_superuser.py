"""Create or update the superuser named by DJANGO_SUPERUSER_USERNAME / _PASSWORD (if set)."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create or update the superuser from DJANGO_SUPERUSER_USERNAME/_PASSWORD."

    def handle(self, *args, **options):
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if not username or not password:
            self.stdout.write(
                "DJANGO_SUPERUSER_USERNAME/_PASSWORD not set: no superuser created "
                "(run `python manage.py createsuperuser` to make one)."
            )
            return
        user_model = get_user_model()
        user, created = user_model.objects.get_or_create(username=username)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Superuser {username!r} {'created' if created else 'updated'}.")
