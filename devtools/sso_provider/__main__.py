"""`python -m devtools.sso_provider seed --client-id ID --client-secret S --redirect-uri URL
--user NAME:PASSWORD:GROUP,GROUP[:EMAIL] ...` registers the service as a client (and signing
key, users); any other arguments go to Django's manage.py (migrate, runserver ...)."""

import argparse
import os
import sys


def seed(argv: list[str]) -> None:
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command
    from oidc_provider.models import Client, ResponseType, RSAKey

    parser = argparse.ArgumentParser(prog="sso_provider seed")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri", required=True)
    parser.add_argument("--user", action="append", default=[])
    args = parser.parse_args(argv)
    call_command("migrate", verbosity=0)
    if not RSAKey.objects.exists():
        call_command("creatersakey")
    code, _ = ResponseType.objects.get_or_create(value="code")
    client, _ = Client.objects.update_or_create(
        client_id=args.client_id,
        defaults={
            "name": "Task Delay Service admin",
            "client_type": "confidential",
            "client_secret": args.client_secret,
            "jwt_alg": "RS256",
            "require_consent": False,
            "_redirect_uris": args.redirect_uri,
        },
    )
    client.response_types.set([code])
    for spec in args.user:
        name, password, groups, *email = spec.split(":", 3)
        user, _ = User.objects.get_or_create(username=name)
        user.email = email[0] if email else f"{name}@example.com"
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get_or_create(name=g)[0] for g in groups.split(",") if g])


def main() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "devtools.sso_provider.settings"
    import django

    if sys.argv[1:2] == ["seed"]:
        django.setup()
        seed(sys.argv[2:])
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(["sso_provider", *sys.argv[1:]])


if __name__ == "__main__":
    main()
