"""The pages a person opens, in a real headless Chromium: Swagger UI at /docs/ and the admin."""

import os
import shutil

import pytest

from api.models import MessageStatus
from api.tests.factories import (
    CampaignFactory,
    CampaignRunFactory,
    ClientFactory,
    MessageFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Chromium and ChromeDriver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1600",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options
    )
    driver.implicitly_wait(10)
    yield driver
    driver.quit()


@pytest.fixture
def operator_login(django_user_model):
    django_user_model.objects.create_superuser("boss", "boss@example.com", "browser-pass-1")
    return "boss", "browser-pass-1"


def sign_in(browser, live_server, credentials, next_path):
    from selenium.webdriver.common.by import By

    browser.get(f"{live_server.url}{next_path}")
    assert "/admin/login/" in browser.current_url  # anonymous people are sent to sign in
    browser.find_element(By.NAME, "username").send_keys(credentials[0])
    browser.find_element(By.NAME, "password").send_keys(credentials[1])
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()


def test_swagger_ui_renders_every_campaign_action(browser, live_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{live_server.url}/docs/")  # public: no sign-in

    WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, ".opblock"))
    )
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    browser.save_screenshot(str(tmp_path / "docs.png"))
    if os.environ.get("SCREENSHOT_DIR"):
        browser.save_screenshot(os.path.join(os.environ["SCREENSHOT_DIR"], "docs.png"))
    for action in ("start", "pause", "resume", "cancel", "stats"):
        assert f"/api/campaigns/{{id}}/{action}/" in paths, sorted(paths)[:10]
    assert "/api/token/" in paths
    assert "Task Delay Service API" in browser.page_source


def test_admin_lists_clients_with_masked_phones(browser, live_server, operator_login):
    from selenium.webdriver.common.by import By

    ClientFactory(phone_number="79161234567", tag="vip")
    sign_in(browser, live_server, operator_login, "/admin/api/client/")

    table = browser.find_element(By.ID, "result_list").text
    assert "7916***4567" in table
    assert "79161234567" not in table


def test_admin_campaign_list_shows_progress_from_the_counters(browser, live_server, operator_login):
    from selenium.webdriver.common.by import By

    run = CampaignRunFactory()
    MessageFactory.create_batch(3, run=run, status=MessageStatus.SENT)
    MessageFactory(run=run, status=MessageStatus.FAILED)
    MessageFactory.create_batch(2, run=run, status=MessageStatus.PENDING)
    idle = CampaignFactory()
    sign_in(browser, live_server, operator_login, "/admin/api/campaign/")

    rows = {
        row.find_element(By.CSS_SELECTOR, "th, td.field-id").text: row.text
        for row in browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    }
    assert "3 sent, 1 not sent of 6 · 66 % done" in rows[str(run.campaign_id)]
    assert "no messages" in rows[str(idle.pk)]
    bar = browser.find_element(By.CSS_SELECTOR, "#result_list .console-progress[data-total='6']")
    segments = {
        segment.get_attribute("title"): segment.size["width"]
        for segment in bar.find_elements(By.CSS_SELECTOR, ".console-seg")
    }
    assert set(segments) == {"3 sent", "2 pending", "1 failed"}
    assert segments["3 sent"] > segments["2 pending"] > segments["1 failed"] > 0


def test_try_it_out_works_after_pasting_a_token_into_authorize(browser, live_server, user):
    from rest_framework_simplejwt.tokens import AccessToken
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ClientFactory(phone_number="79161234567", tag="swagger")
    wait = WebDriverWait(browser, 20)
    browser.get(f"{live_server.url}/docs/")
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".btn.authorize"))).click()
    field = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".auth-container input")))
    field.send_keys(str(AccessToken.for_user(user)))
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize").click()
    browser.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .btn-done").click()

    block = next(
        b
        for b in browser.find_elements(By.CSS_SELECTOR, ".opblock.opblock-get")
        if b.find_element(By.CSS_SELECTOR, ".opblock-summary-path").text == "/api/clients/"
    )
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(lambda _: block.find_elements(By.CSS_SELECTOR, ".try-out__btn"))[0].click()
    block.find_element(By.CSS_SELECTOR, ".execute").click()

    status = wait.until(
        lambda _: block.find_elements(
            By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status"
        )
    )[0]
    assert status.text.strip().startswith("200"), status.text
    assert "7916" in block.find_element(By.CSS_SELECTOR, ".live-responses-table").text
