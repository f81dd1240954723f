"""The operator console in a real headless Chromium, against a campaign delivered by the real
pipeline (API over HTTP, planning, the sweep, the dispatcher, the locmem provider)."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from api import tasks
from api.models import Campaign, Message, MessageStatus
from api.providers import locmem
from api.tests.campaign_helpers import iso
from api.tests.factories import ClientFactory
from api.tests.test_browser import browser, operator_login, sign_in  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
DOCS = Path(__file__).resolve().parents[2] / "docs"


def start_half_due_campaign(live_server, user) -> int:
    """Six clients whose window is open now (UTC) and four for whom it is not (Tokyo): the
    campaign sends six at once and keeps running for the other four."""
    now = timezone.now()
    ClientFactory.create_batch(6, tag="console", timezone="UTC")
    ClientFactory.create_batch(4, tag="console", timezone="Asia/Tokyo")
    body = {
        "text_message": "20 % off for you today",
        "start_datetime": iso(now - timedelta(minutes=5)),
        "end_datetime": iso(now + timedelta(days=2)),
        "time_interval_start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "time_interval_end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "tag": "console",
    }
    response = requests.post(
        f"{live_server.url}/api/campaigns/", json=body, headers=bearer(user), timeout=30
    )
    assert response.status_code == 201, response.text
    tasks.sweep()  # beat's sweep: the eager worker sends the six due messages
    assert len(locmem.outbox) == 6
    return response.json()["id"]


def bearer(user) -> dict:
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def spread_history(campaign_id: int) -> None:
    """Give the chart a few minutes of history: move the sends' times back (the triggers keep
    the per-minute rows in step with any such UPDATE)."""
    sent = Message.objects.filter(run__campaign_id=campaign_id, status=MessageStatus.SENT)
    for back, message in enumerate(sent.order_by("id")):
        Message.objects.filter(pk=message.pk).update(
            sent_at=message.sent_at - timedelta(minutes=(back * 3) % 7)
        )


def test_operator_watches_a_running_campaign_and_pauses_it(
    browser, live_server, operator_login, django_user_model  # noqa: F811 - fixtures
):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    operator = django_user_model.objects.get(username=operator_login[0])
    campaign_id = start_half_due_campaign(live_server, operator)
    spread_history(campaign_id)
    sign_in(browser, live_server, operator_login, f"/admin/api/campaign/{campaign_id}/change/")

    bar = browser.find_element(By.CSS_SELECTOR, "#console-activity .console-progress")
    assert (bar.get_attribute("data-total"), bar.get_attribute("data-sent")) == ("10", "6")
    assert "6 sent of 10" in bar.text
    chart = browser.find_element(By.CSS_SELECTOR, "#console-chart svg.console-chart")
    bars = chart.find_elements(By.CSS_SELECTOR, "rect.console-sent-bar")
    assert sum(int(b.get_attribute("data-sent")) for b in bars) == 6
    assert max(b.size["height"] for b in bars) > 50  # drawn, not just present
    assert browser.find_element(By.ID, "console-status").text.lower() == "running"

    # A send lands while the page is open: the page shows it without a reload.
    tokyo = Message.objects.filter(run__campaign_id=campaign_id, status=MessageStatus.PENDING)
    Message.objects.filter(pk=tokyo.order_by("id").first().pk).update(
        status=MessageStatus.SENT, sent_at=timezone.now()
    )
    WebDriverWait(browser, 15).until(
        lambda b: b.find_element(
            By.CSS_SELECTOR, "#console-activity .console-progress"
        ).get_attribute("data-sent")
        == "7"
    )
    assert "updated" in browser.find_element(By.ID, "console-refreshed").text
    if os.environ.get("SCREENSHOT_DIR"):
        browser.save_screenshot(os.path.join(os.environ["SCREENSHOT_DIR"], "console.png"))

    browser.find_element(By.ID, "console-pause").click()

    WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: b.find_element(By.ID, "console-status").text.lower() == "paused"
    )
    assert "Paused." in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    api_view = requests.get(
        f"{live_server.url}/api/campaigns/{campaign_id}/", headers=bearer(operator), timeout=30
    )
    assert api_view.json()["status"] == "paused"
    assert Campaign.objects.get(pk=campaign_id).status == "paused"

    browser.find_element(By.ID, "console-pause").click()  # again: the API's 409, as a message
    # click() does not wait for the POST and its redirect: until then the old page (or a
    # stale element of it) is what the browser holds.
    WebDriverWait(browser, 15, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda b: "Refused (409)" in b.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    )
    assert "Refused (409)" in browser.find_element(By.CSS_SELECTOR, "ul.messagelist").text
