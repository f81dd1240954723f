"""A local OpenID Connect provider (django-oidc-provider) for trying and testing the admin's
single sign-on: `python -m devtools.sso_provider seed ...`, then `... runserver PORT`."""
