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
            "--timeout-rate", type=float, default=0.0, help="share accepted but never answered"
        )
        parser.add_argument(
            "--bad-request-rate", type=float, default=0.0, help="share answered 400"
        )
        parser.add_argument(
            "--no-record", action="store_true", help="count deliveries without keeping them"
        )
        parser.add_argument(
            "--receipt-log",
            default="",
            help="append one JSON line per request (time, id, status) and recognise the ids"
            " accepted in an earlier run of the gateway",
        )
        parser.add_argument(
            "--control", action="store_true", help="serve POST /control to change the knobs"
        )

    def handle(self, *args, **options):
        config = GatewayConfig(
            token=options["token"],
            latency_ms=options["latency_ms"],
            error_rate=options["error_rate"],
            throttle_rate=options["throttle_rate"],
            retry_after=options["retry_after"],
            accept_then_hang_rate=options["timeout_rate"],
            bad_request_rate=options["bad_request_rate"],
            record=not options["no_record"],
        )
        gateway = FakeGateway(config, receipt_log=options["receipt_log"])
        self.stdout.write(
            f"Fake SMS gateway on http://{options['host']}:{options['port']} "
            "(POST /send/<id>, GET /stats). Point the service at it with "
            f"SMS_GATEWAY_URL=http://{options['host']}:{options['port']}"
        )
        web.run_app(
            gateway.app(control=options["control"]),
            host=options["host"],
            port=options["port"],
            access_log=None,
            print=None,
        )
