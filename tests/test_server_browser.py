"""The chat page in a real browser: headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium) opens `/` of a real server, sends a message and sees the answer stream in. The screenshot is
saved in .cache/test-artifacts/ (or $EDGELLM_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("starlette")
webdriver = pytest.importorskip("selenium.webdriver")

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from server_rig import MODEL, Running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("EDGELLM_TEST_ARTIFACTS", Path(__file__).parents[1] / ".cache" / "test-artifacts"))
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver: sudo apt install chromium chromium-driver (make test does as root)",
)

# Record every text the answer bubble shows, to tell a streamed answer from one that lands at once.
WATCH_ANSWER = """
window.seen = [];
new MutationObserver(() => {
  const answer = document.querySelector('#log .msg.assistant, #log .msg.error');
  if (answer) window.seen.push([answer.className, answer.textContent]);
}).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1000,800", f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        options.add_argument(flag)  # no background networking: this machine's closed network refuses it
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def test_the_chat_page_streams_an_answer(engine, browser):
    running = Running(engine, max_queue=2, profile_name="x86-64")
    try:
        browser.get(running.url + "/")
        WebDriverWait(browser, 15).until(lambda d: MODEL in d.find_element(By.ID, "model").text)
        assert "x86-64" in browser.find_element(By.ID, "profile").text
        browser.execute_script(WATCH_ANSWER)
        browser.find_element(By.ID, "prompt").send_keys("What can a robot do with a language model?")
        browser.find_element(By.ID, "send").click()
        assert not browser.find_element(By.ID, "send").is_enabled()  # busy while it streams
        WebDriverWait(browser, 90).until(lambda d: d.find_element(By.ID, "send").is_enabled())
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "server_chat_page.png"))
        answer = browser.find_element(By.CSS_SELECTOR, "#log .msg:last-child")
        seen = browser.execute_script("return window.seen")
    finally:
        running.close()
    assert answer.get_attribute("class") == "msg assistant", answer.text
    final = answer.get_attribute("textContent")
    texts = [text for cls, text in seen if text]
    assert final.strip() and texts[-1] == final
    assert all(final.startswith(text) for text in texts)  # it grew in order, never rewritten
    assert len(set(texts)) >= 3, f"the answer arrived in {len(set(texts))} piece(s), not streamed: {texts}"
    user = browser.find_elements(By.CSS_SELECTOR, "#log .msg.user")
    assert [u.text for u in user] == ["What can a robot do with a language model?"]
