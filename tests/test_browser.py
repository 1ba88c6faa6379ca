"""What a learner sees in a notebook, rendered by a real browser (Debian's chromium, driven by Playwright)."""

import shutil

import pytest

import dqn
from beyond.chinese import PROGRESS
from beyond.hooks import NotebookProgress

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser.new_page(viewport=dict(width=900, height=300))
        browser.close()


def drawings(labels=None):
    """The progress display's HTML at the start, mid-filling, and once learning, for a short real run."""
    agent = dqn.DQN(4, 2, seed=0, memory_capacity=200)
    progress = NotebookProgress(agent, episodes=30, labels=labels)
    start = progress.html()
    dqn.train(agent, dqn.make_env(), episodes=3, seed=0, log=None, hooks=progress)
    filling = progress.html()
    dqn.train(agent, dqn.make_env(), episodes=30, seed=0, log=None, hooks=progress)
    return start, filling, progress.html()


@pytest.mark.parametrize("labels", [None, PROGRESS], ids=["English", "Chinese"])
def test_the_progress_display_shows_a_bar_while_filling_then_what_is_known(page, labels):
    start, filling, learning = drawings(labels)
    page.set_content(f'<div id="out">{start}</div>')
    bar = page.locator("progress")
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("0", "201")
    assert bar.bounding_box()["width"] >= 200  # a bar to watch, not a small square
    assert bar.evaluate("b => b.position") == 0.0
    page.set_content(f'<div id="out">{filling}</div>')
    position = bar.evaluate("b => b.position")
    assert 0 < position < 1  # partly full: three short episodes of the 201 transitions
    assert "201" in page.locator("#out").inner_text()
    page.set_content(f'<div id="out">{learning}</div>')
    assert page.locator("progress").count() == 0  # no bar where the end is not known
    text = page.locator("#out").inner_text()
    assert ("env steps/s" in text or "每秒" in text) and not any(m in text for m in ("?", "<00", "remaining"))
    assert page.locator("#out").bounding_box()["height"] < 60  # one line, not a wall of text
