"""Run the development SMS gateway: `python manage.py fake_gateway --port 9000`."""

from aiohttp import web
from django.core.management.base import BaseCommand

from devtools.fake_gateway import FakeGateway, GatewayConfig


class Command(BaseCommand):
    help = "Serve a local SMS gateway that speaks the production wire format (for development)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=9000)
        parser.add_argument("--token", default="", help="require this Bearer token")
        parser.add_argument("--latency-ms", type=float, default=0.0)
        parser.add_argument("--error-rate", type=float, default=0.0, help="share answered 503")
        parser.add_argument("--throttle-rate", type=float, default=0.0, help="share answered 429")
        parser.add_argument("--retry-after", type=float, default=1.0, help="seconds, with 429")
        parser.add_argument(
            "--no-record", action="store_true", help="count deliveries without keeping them"
        )

    def handle(self, *args, **options):
        config = GatewayConfig(
            token=options["token"],
            latency_ms=options["latency_ms"],
            error_rate=options["error_rate"],
            throttle_rate=options["throttle_rate"],
            retry_after=options["retry_after"],
            record=not options["no_record"],
        )
        gateway = FakeGateway(config)
        self.stdout.write(
            f"Fake SMS gateway on http://{options['host']}:{options['port']} "
            "(POST /send/<id>, GET /stats). Point the service at it with "
            f"SMS_GATEWAY_URL=http://{options['host']}:{options['port']}"
        )
        web.run_app(
            gateway.app(),
            host=options["host"],
            port=options["port"],
            access_log=None,
            print=None,
        )
