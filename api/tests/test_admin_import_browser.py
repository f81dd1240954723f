"""The admin's import page in a real browser: upload a CSV, land on the import's page with its
progress and its report of refused rows."""

from __future__ import annotations

import pytest

from api.models import Client, ClientImport
from api.tests.test_browser import browser, operator_login, sign_in  # noqa: F401 - fixtures

CSV = (
    "phone_number,mobile_operator_code,tag,timezone\n"
    "79000000001,900,vip,UTC\n"
    "79000000002,900,,Mars/Olympus\n"
    "79000000001,901,,UTC\n"
)


@pytest.mark.parametrize("sync_max_bytes", [1024 * 1024, 10], ids=["at-once", "in-a-worker"])
def test_admin_upload_shows_progress_and_the_report(
    browser, live_server, operator_login, tmp_path, settings, sync_max_bytes  # noqa: F811
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    settings.IMPORT_SYNC_MAX_BYTES = sync_max_bytes  # 10: stored, run by the (eager) worker
    path = tmp_path / "clients.csv"
    path.write_text(CSV)
    sign_in(browser, live_server, operator_login, "/admin/api/clientimport/")
    browser.find_element(By.CSS_SELECTOR, "a[href$='/clientimport/upload/']").click()
    browser.find_element(By.NAME, "file").send_keys(str(path))
    Select(browser.find_element(By.NAME, "mode")).select_by_value("upsert")
    browser.find_element(By.CSS_SELECTOR, "#client-import-form input[type=submit]").click()
    # click() does not wait for the POST: wait for the redirect to the import's page.
    WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/change/"))

    job = ClientImport.objects.get()
    assert browser.current_url.endswith(f"/admin/api/clientimport/{job.pk}/change/")
    page = browser.find_element(By.ID, "content").text
    assert "created 1" in page and "invalid 1" in page and "duplicate 1" in page
    assert browser.find_element(By.CSS_SELECTOR, "progress").get_attribute("value") == "3"
    cells = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in browser.find_elements(By.CSS_SELECTOR, "table.import-report tr")[1:]
    ]
    assert [cell[:2] for cell in cells] == [["3", "timezone"], ["4", "phone_number"]]
    assert Client.objects.get().tag == "vip"


def test_admin_upload_of_a_headerless_file_is_a_form_error(
    browser, live_server, operator_login, tmp_path  # noqa: F811
):
    from selenium.webdriver.common.by import By

    path = tmp_path / "clients.csv"
    path.write_text("79000000001\n")
    sign_in(browser, live_server, operator_login, "/admin/api/clientimport/upload/")
    browser.find_element(By.NAME, "file").send_keys(str(path))
    browser.find_element(By.CSS_SELECTOR, "#client-import-form input[type=submit]").click()
    assert "delimiter must be ',' or ';'" in browser.find_element(By.CLASS_NAME, "errorlist").text
    assert not ClientImport.objects.exists()


@pytest.mark.django_db
def test_admin_upload_needs_the_right_to_add_and_change_clients(client, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/api/clientimport/upload/").status_code == 403
