"""Real Chromium against the demo site (simulated desk station and door controller) with the
console served by uvicorn: program a key at the key desk to verified; issue a visitor card,
see it granted at the simulated door, return it, see the holder erased and the door refuse
it; remove a tag in the access review and see the controller revoke it. Screenshots go to
test-artifacts/web/ (not committed)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from rich.console import Console

from gateway.demo import cast
from gateway.demo.central import DirectCentral
from gateway.demo.narrator import Narrator
from gateway.demo.runner import DEMO_PASSWORD, demo_logins, demo_setup
from gateway.demo.story import DESK, STEPS, Actors, Story, run_story
from tests.gateway.web.test_browser import ARTIFACTS

T = TypeVar("T")
PREPARE = ("operators", "agreements", "delivery", "handout", "application", "tag")


def _browse(
    url: str, binaries: tuple[str, str], run: Callable[[Awaitable[Any]], Any], story: Story
) -> dict[str, Any]:
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
    seen: dict[str, Any] = {}
    wait = WebDriverWait(driver, 15)

    def sign_in(name: str, page: str) -> None:
        driver.delete_all_cookies()
        driver.get(url + page)
        wait.until(ec.presence_of_element_located((By.ID, "operator")))
        driver.find_element(By.ID, "operator").send_keys(name)
        driver.find_element(By.ID, "password").send_keys(DEMO_PASSWORD)
        driver.find_element(By.ID, "sign-in").click()

    try:
        # ---- key desk: an access administrator programs Anna's key
        sign_in(Actors().access_admin, "keydesk")
        wait.until(ec.presence_of_element_located((By.ID, "desk")))
        run(_insert(story))
        confirm = wait.until(ec.element_to_be_clickable((By.ID, "desk-confirm")))
        seen["desk_serial"] = driver.find_element(By.ID, "desk-serial").text
        driver.save_screenshot(str(ARTIFACTS / "keydesk-inserted.png"))
        confirm.click()
        result = wait.until(ec.presence_of_element_located((By.ID, "desk-result")))
        seen["desk_result"] = result.text
        driver.save_screenshot(str(ARTIFACTS / "keydesk-result.png"))

        # ---- reception: issue a card, the door grants it, return it, erased and refused
        sign_in(Actors().receptionist, "reception")
        wait.until(ec.presence_of_element_located((By.ID, "issue-card")))
        until = (datetime.now() + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
        for field, value in (
            ("number", "5000901"),
            ("holder_name", "Helena Berg"),
            ("company", "Hissservice AB"),
            ("mobile", "+46709990001"),
        ):
            driver.find_element(By.ID, field).send_keys(value)
        driver.execute_script("document.getElementById('valid_until').value = arguments[0];", until)
        driver.find_element(By.CSS_SELECTOR, "input[name=spaces][value=sp-office]").click()
        driver.find_element(By.ID, "confirmed_in_person").click()
        driver.find_element(By.ID, "return_duty_acknowledged").click()
        driver.find_element(By.ID, "issue-card").click()
        wait.until(ec.presence_of_element_located((By.ID, "card-5000901")))
        driver.save_screenshot(str(ARTIFACTS / "site-reception-issued.png"))
        seen["granted"] = run(_present(story, 5000901))
        driver.find_element(By.ID, "return-5000901").click()
        wait.until(ec.presence_of_element_located((By.ID, "returned")))
        seen["returned"] = driver.find_element(By.ID, "done").text
        seen["holder_now"] = driver.find_element(By.ID, "returned").text
        driver.save_screenshot(str(ARTIFACTS / "site-reception-returned.png"))
        seen["granted_after"] = run(_present(story, 5000901))

        # ---- access review: the administrator removes Anna's tag; the controller revokes it
        seen["tag_before"] = run(_present(story, int(cast.TAG_ANNA)))
        sign_in(Actors().administrator, "review")
        box = wait.until(ec.element_to_be_clickable((By.ID, f"remove-{cast.TAG_ANNA}")))
        box.click()
        driver.find_element(By.ID, "note").send_keys("no longer on the project")
        driver.find_element(By.ID, "sign-off").click()
        seen["review"] = wait.until(ec.presence_of_element_located((By.ID, "done"))).text
        driver.save_screenshot(str(ARTIFACTS / "site-review-recorded.png"))
        seen["tag_after"] = run(_present(story, int(cast.TAG_ANNA)))
    finally:
        driver.quit()
    return seen


async def _insert(story: Story) -> None:
    story.site.insert(DESK, cast.KEY_ANNA)


async def _present(story: Story, number: int) -> bool:
    await story.until(story.controller_in_sync, "the controller's allow-list")
    decision = await story.site.present(cast.CONTROLLER, number, 1)
    return bool(decision["granted"])


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_key_desk_and_reception_on_the_simulated_site(
    tmp_path: Path, chromium: tuple[str, str]
) -> None:
    console = Console(file=io.StringIO(), width=120)
    async with demo_setup(
        tmp_path, console, control=False, use_broker=False, web_address="127.0.0.1:0"
    ) as setup:
        story = Story(
            setup.gateway,
            setup.site,
            DirectCentral(setup.gateway, Actors().central),
            setup.stations,
            tmp_path,
            Narrator(console),
            setup.story_events.events,
        )
        await run_story(story, [s for s in STEPS if s[0] in PREPARE])
        assert all(r.ok for r in story.narrator.results), console.file.getvalue()  # type: ignore[attr-defined]
        await setup.gateway.call(demo_logins, setup.gateway)
        assert setup.desk is not None and setup.web is not None
        setup.stations[DESK].decide = setup.desk.decide
        setup.desk.station(DESK)
        loop = asyncio.get_running_loop()

        def run(coro: Awaitable[T]) -> T:
            return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=20)  # type: ignore[arg-type]

        seen = await asyncio.to_thread(_browse, setup.web.url, chromium, run, story)
    assert seen["desk_serial"] == cast.KEY_ANNA
    assert "written" in seen["desk_result"]
    assert seen["granted"] is True
    assert "personal data erased: yes" in seen["returned"]
    assert "Helena" not in seen["holder_now"]
    assert seen["granted_after"] is False
    assert seen["tag_before"] is True
    assert "1 removed and revoked" in seen["review"]
    assert seen["tag_after"] is False
