"""ClientSerializer builds its dict directly (a page of clients is the most called list): it
must stay what DRF's declared fields would give, field for field."""

import pytest
from django.utils import timezone
from rest_framework import serializers

from api.serializers import ClientSerializer
from api.tests.factories import ClientFactory


@pytest.mark.parametrize("zone", ["UTC", "Europe/Moscow", "America/St_Johns"])
def test_the_direct_dict_is_drfs_representation(db, zone):
    client = ClientFactory()
    declared = ClientSerializer()

    with timezone.override(zone):
        direct = ClientSerializer(client).data
        by_fields = serializers.ModelSerializer.to_representation(declared, client)

    assert list(direct) == list(
        ClientSerializer.Meta.fields
    ), "a field was added to ClientSerializer.Meta.fields: add it to its to_representation"
    assert dict(direct) == dict(by_fields)


def test_the_list_uses_it(api):
    client = ClientFactory()

    body = api.get("/api/clients/").json()["results"]

    assert body == [ClientSerializer(client).data]
    assert body[0]["created_at"].endswith("Z")
