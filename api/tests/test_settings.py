"""Settings come from the environment with safe defaults; production refuses unsafe ones."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env):
    """Import the settings in a fresh interpreter with exactly these variables set."""
    script = (
        "import django, json; django.setup(); from django.conf import settings as s;"
        "print(json.dumps({'debug': s.DEBUG, 'db': s.DATABASES['default']['ENGINE'],"
        " 'broker': s.CELERY_BROKER_URL, 'provider': s.SMS_PROVIDER,"
        " 'access': s.SIMPLE_JWT['ACCESS_TOKEN_LIFETIME'].total_seconds(),"
        " 'cors_all': s.CORS_ALLOW_ALL_ORIGINS, 'cors': s.CORS_ALLOWED_ORIGINS,"
        " 'interval': s.DISPATCH_INTERVAL_SECONDS,"
        " 'no_cursors': s.DATABASES['default'].get('DISABLE_SERVER_SIDE_CURSORS', False),"
        " 'throttle': s.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SMS_", "CORS"))}
    clean.pop("DATABASE_URL", None)
    clean.pop("CELERY_BROKER_URL", None)
    clean.update(DJANGO_SETTINGS_MODULE="Work.settings", DATA_DIR=str(ROOT / ".data"), **env)
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", script], cwd=ROOT, env=clean, capture_output=True, text=True
    )


def test_development_defaults_need_no_server():
    result = load_settings()
    assert result.returncode == 0, result.stderr
    assert '"db": "django.db.backends.sqlite3"' in result.stdout
    assert '"broker": "filesystem://"' in result.stdout
    assert '"provider": "api.providers.console.ConsoleProvider"' in result.stdout
    assert '"interval": 60' in result.stdout


def test_production_without_a_secret_key_refuses_to_start():
    result = load_settings(DJANGO_DEBUG="false")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_production_settings_from_the_environment():
    result = load_settings(
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://u:p@db:5432/campaigns",
        CELERY_BROKER_URL="redis://redis:6379/0",
        SMS_GATEWAY_URL="https://gateway.example/api",
        ACCESS_TOKEN_LIFETIME="120",
        CORS_ALLOW_ALL_ORIGINS="true",
        DISPATCH_INTERVAL_SECONDS="15",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert '"debug": false' in out
    assert '"db": "django.db.backends.postgresql"' in out
    assert '"provider": "api.providers.http.HttpProvider"' in out
    assert '"access": 120.0' in out
    assert '"cors_all": false' in out  # never open to all origins in production
    assert '"cors": []' in out
    assert '"interval": 15.0' in out
    assert '"no_cursors": false' in out


def test_behind_pgbouncer_server_side_cursors_are_off():
    result = load_settings(
        DATABASE_URL="postgres://u:p@pgbouncer:6432/campaigns",
        DATABASE_DISABLE_SERVER_SIDE_CURSORS="true",
    )
    assert result.returncode == 0, result.stderr
    assert '"no_cursors": true' in result.stdout


def test_a_worker_with_a_bad_gateway_url_refuses_to_start(tmp_path):
    """The Celery worker stops at start-up naming the variable, not message by message."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SMS_"))}
    env.pop("DATABASE_URL", None)
    env.update(
        DJANGO_SETTINGS_MODULE="Work.settings",
        DATA_DIR=str(tmp_path),
        CELERY_BROKER_URL="memory://",
        SMS_GATEWAY_URL="http://gateway.example/send\r\nX-Injected: 1",
        SMS_GATEWAY_TOKEN="s3cret",
    )
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-m", "celery", "-A", "Work", "worker", "-P", "solo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SMS_GATEWAY_URL contains a control character" in result.stdout + result.stderr
    assert "s3cret" not in result.stdout + result.stderr


_KEY_SCRIPT = (
    "import django; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
)


def _key(data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DJANGO_SETTINGS_MODULE="Work.settings", DATA_DIR=str(data_dir))
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _KEY_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_development_signs_with_a_random_key_of_its_own_kept_in_the_data_folder(tmp_path):
    first = _key(tmp_path / "one")

    assert len(first) >= 50
    assert "insecure" not in first and "dev-only" not in first
    key_file = tmp_path / "one" / "secret_key"
    assert key_file.read_text().strip() == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert _key(tmp_path / "one") == first  # reused: tokens survive a restart
    assert _key(tmp_path / "two") != first  # another checkout, another key
    assert ".data/" in (ROOT / ".gitignore").read_text()


def test_a_token_signed_with_the_key_once_committed_is_refused(anon, user):
    import jwt

    forged = jwt.encode(
        {"token_type": "access", "user_id": str(user.pk), "exp": 4102444800, "jti": "x"},
        "dev-only-insecure-key-do-not-use-in-production",
        algorithm="HS256",
    )
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    assert anon.get("/api/clients/").status_code == 401


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "p" * 20 + "R4nd0m-Pr0duct10n-K3y-" + "q" * 20,
    "DJANGO_ALLOWED_HOSTS": "campaigns.example.com",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def test_check_deploy_is_clean_with_a_production_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "SECURE_"))}
    env.update(DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="Work.settings", **PRODUCTION)
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
