"""Print the OIDC_OP_* lines for .env from a provider's discovery document.

The service reads its provider's endpoints from the environment only (no network call at
start-up); this turns `<issuer>/.well-known/openid-configuration` into those lines once.
"""

import requests
from django.core.management.base import BaseCommand, CommandError

ENV_OF_FIELD = {
    "OIDC_OP_ISSUER": "issuer",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "authorization_endpoint",
    "OIDC_OP_TOKEN_ENDPOINT": "token_endpoint",
    "OIDC_OP_USER_ENDPOINT": "userinfo_endpoint",
    "OIDC_OP_JWKS_ENDPOINT": "jwks_uri",
}


class Command(BaseCommand):
    help = "Print OIDC_OP_* settings from an OpenID provider's discovery document."

    def add_arguments(self, parser):
        parser.add_argument(
            "issuer", help="the provider's issuer URL, e.g. https://idp.example.com"
        )
        parser.add_argument("--timeout", type=float, default=10)

    def handle(self, *args, issuer: str, timeout: float, **options):
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = requests.get(url, timeout=timeout)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise CommandError(f"no discovery document at {url}: {exc}") from None
        missing = [field for field in ENV_OF_FIELD.values() if not document.get(field)]
        if missing:
            raise CommandError(f"the discovery document lacks {', '.join(missing)}")
        for name, field in ENV_OF_FIELD.items():
            self.stdout.write(f"{name}={document[field]}")
