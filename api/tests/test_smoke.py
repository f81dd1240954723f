from api.models import Message, MessageStatus
from api.providers import locmem
from api.tests.factories import ClientFactory


def test_seed_flow(api, django_capture_on_commit_callbacks):
    r = api.post(
        "/api/clients",
        {
            "phone_number": "79000000001",
            "mobile_operator_code": "900",
            "tag": "vip",
            "timezone": "UTC",
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    ClientFactory.create_batch(3)
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(
            "/api/newsletters",
            {
                "text_message": "Hello",
                "start_datetime": "2020-01-01T00:00:00Z",
                "end_datetime": "2099-01-01T00:00:00Z",
                "tag": "vip",
            },
            format="json",
        )
    assert r.status_code == 201, r.content
    cid = r.json()["id"]
    r = api.get(f"/api/newsletters/{cid}/stats")
    assert r.status_code == 200, r.content
    print(r.json())
    assert r.json()["sent_messages"] == 4
    assert len(locmem.outbox) == 4
    r = api.post(f"/api/campaigns/{cid}/start/")
    assert r.status_code == 409, r.content
    with django_capture_on_commit_callbacks(execute=True):
        r = api.post(f"/api/campaigns/{cid}/start/", {"force_resend": True}, format="json")
    assert r.status_code == 202, r.content
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 8
    print(api.get("/api/campaigns/stats/").json())
    print(api.get("/api/messages/?status=sent&page_size=2").json())
