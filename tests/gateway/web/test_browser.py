"""Real Chromium (headless, through chromedriver) against the console served by uvicorn:
sign in, issue a visitor card, see it listed, return it and see the holder erased.
Screenshots go to test-artifacts/web/ (not committed)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.web.service import WebService
from tests.gateway.web.conftest import PASSWORD, Site, role_operator

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "web"


def _run_browser(url: str, binaries: tuple[str, str]) -> list[str]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(binaries[1]), options=options)
    seen: list[str] = []
    try:
        wait = WebDriverWait(driver, 10)
        driver.get(url + "reception")
        wait.until(ec.presence_of_element_located((By.ID, "operator")))
        driver.save_screenshot(str(ARTIFACTS / "sign-in.png"))
        driver.find_element(By.ID, "operator").send_keys(role_operator("issuer"))
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "sign-in").click()
        wait.until(ec.presence_of_element_located((By.ID, "issue-card")))
        until = (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
        for field, value in (
            ("number", "5000777"),
            ("holder_name", "Vera Besök"),
            ("company", "Besök AB"),
            ("mobile", "+46701234567"),
        ):
            driver.find_element(By.ID, field).send_keys(value)
        driver.execute_script("document.getElementById('valid_until').value = arguments[0];", until)
        driver.find_element(By.CSS_SELECTOR, "input[name=spaces][value=sp-office]").click()
        driver.find_element(By.ID, "confirmed_in_person").click()
        driver.find_element(By.ID, "return_duty_acknowledged").click()
        driver.save_screenshot(str(ARTIFACTS / "reception-form.png"))
        driver.find_element(By.ID, "issue-card").click()
        wait.until(ec.presence_of_element_located((By.ID, "card-5000777")))
        seen.append(driver.find_element(By.ID, "done").text)
        driver.save_screenshot(str(ARTIFACTS / "reception-issued.png"))
        driver.find_element(By.ID, "return-5000777").click()
        wait.until(ec.presence_of_element_located((By.ID, "returned")))
        seen.append(driver.find_element(By.ID, "done").text)
        seen.append(driver.find_element(By.ID, "returned").text)
        driver.save_screenshot(str(ARTIFACTS / "reception-returned.png"))
        driver.get(url)
        wait.until(ec.presence_of_element_located((By.ID, "devices-table")))
        driver.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        driver.get(url + "credentials/5000777")
        seen.append(driver.find_element(By.ID, "holder").text)
        driver.save_screenshot(str(ARTIFACTS / "credential.png"))
    finally:
        driver.quit()
    return seen


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_reception_in_chromium(site: Site, chromium: tuple[str, str]) -> None:
    service = WebService(site.gateway.settings.web.model_copy(update={"address": "127.0.0.1:0"}))
    await service.start(site.gateway)
    try:
        seen = await asyncio.to_thread(_run_browser, service.url, chromium)
    finally:
        await service.stop()
    issued, returned, holder_now, credential_holder = seen
    assert "visitor card 5000777 issued" in issued
    assert "returned" in returned and "personal data erased: yes" in returned
    assert "Vera" not in holder_now and "Vera" not in credential_holder
    assert (ARTIFACTS / "reception-returned.png").stat().st_size > 1000
