"""Where one request's time goes: each kind of bench_load.py's traffic called in process
through the full Django stack (middleware, JWT, DRF, the database on loopback), timed, and the
slowest one profiled with pyinstrument. In process there is no queueing: the median here is
what one request costs a gunicorn thread, and rate x cost summed over the mix is the CPU the
load needs."""

from __future__ import annotations

import itertools
import json
import random
import time

from bench import common


def calls(campaign_id: int, clients: int, user):
    """kind -> a function making one request with a django.test.Client."""
    from rest_framework_simplejwt.tokens import RefreshToken

    phones = itertools.count(1)
    body = json.dumps

    def create(client):
        phone = f"76{next(phones):09d}"
        data = {"phone_number": phone, "mobile_operator_code": "977", "tag": "load"}
        return client.post("/api/clients/", body(data), content_type="application/json")

    def update(client):
        url = f"/api/clients/{random.randint(1, clients)}/"  # noqa: S311 - not crypto
        data = body({"tag": f"t{random.randint(1, 50)}"})  # noqa: S311
        return client.patch(url, data, content_type="application/json")

    def refresh(client):
        data = body({"refresh": str(RefreshToken.for_user(user))})
        return client.post("/api/token/refresh/", data, content_type="application/json")

    return {
        "client_list": lambda c: c.get("/api/clients/?tag=bench&mobile_operator_code=900"),
        "message_list": lambda c: c.get(f"/api/messages/?campaign={campaign_id}&status=sent"),
        "campaign_list": lambda c: c.get("/api/campaigns/?status=running"),
        "campaign_stats": lambda c: c.get(f"/api/campaigns/{campaign_id}/stats/"),
        "client_create": create,
        "client_update": update,
        "token_refresh": refresh,
    }


def profile_requests(token: str, user, campaign_id: int, clients: int, mix: dict, repeat: int):
    """Times each kind `repeat` times; prints the table and the slowest kind's profile."""
    from django.test import Client
    from pyinstrument import Profiler

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    kinds = calls(campaign_id, clients, user)
    rows, medians = [], {}
    for kind, call in kinds.items():
        for _ in range(5):
            call(client)
        samples, cpu = [], []
        for _ in range(repeat):
            cpu_before = time.process_time()
            samples.append(common.time_calls(lambda call=call: check(call(client)), repeat=1)[0])
            cpu.append(time.process_time() - cpu_before)
        medians[kind] = common.median(cpu)
        rows.append(
            [
                kind,
                common.ms(common.median(samples)),
                common.ms(common.percentile(samples, 99)),
                common.ms(medians[kind]),
            ]
        )
    common.print_table(
        ["in process", "median", "p99", "CPU (this process)"], rows, title="One request, no load"
    )
    cpu = sum(mix[kind] * medians[kind] for kind in kinds)
    print(
        f"the mix at {sum(mix.values())} req/s needs ~{cpu:.2f} s of one core per second"
        " in Django alone (Postgres's own CPU aside)"
    )
    slowest = max(medians, key=lambda kind: mix[kind] * medians[kind])
    profiler = Profiler(interval=0.0005)
    with profiler:
        for _ in range(repeat):
            kinds[slowest](client)
    print(f"\nprofile of {slowest} (the largest share of the mix's time), {repeat} calls:")
    print(profiler.output_text(color=False, show_all=False, short_mode=True))
    return medians


def check(response):
    if response.status_code >= 300:
        raise SystemExit(f"{response.status_code}: {response.content[:200]!r}")
    return response
