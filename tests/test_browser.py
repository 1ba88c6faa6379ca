"""What a learner sees in a notebook, rendered by a real browser (Debian's chromium, driven by Playwright)."""

import json
import shutil
import sys

import pytest

import dqn
from beyond.chinese import PROGRESS
from beyond.hooks import NotebookProgress
from conftest import ROOT, quick_reference

sys.path.insert(0, str(ROOT / "bench"))  # the JupyterLab harness that bench/notebook_speed.py uses too
import jupyter_lab  # noqa: E402

pytestmark = pytest.mark.skipif(jupyter_lab.CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("playwright.sync_api")
    with jupyter_lab.chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def page(browser):
    return browser.new_page(viewport=dict(width=900, height=300))


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


NOTEBOOKS = ["dqn.ipynb", "dqn.zh-CN.ipynb"]
REFERENCE_CELL = jupyter_lab.cell_index(ROOT / "dqn.ipynb", "place_run(")  # "Is this run normal?"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on copies of both notebooks (and quick-mode copies), with a reference for quick runs."""
    pytest.importorskip("jupyterlab")
    folder = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        shutil.copy(ROOT / name, folder / name)
        quick = jupyter_lab.with_settings((ROOT / name).read_text(encoding="utf-8"), "quick = False", "quick = True")
        (folder / f"quick-{name}").write_text(quick)
    references = quick_reference(tmp_path_factory.mktemp("references"))
    with jupyter_lab.lab_server(folder, env=dict(DQN_REFERENCE_RUNS=str(references))) as server:
        yield server


@pytest.fixture(scope="module")
def lab_page(browser):
    return jupyter_lab.lab_page(browser)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_jupyterlab_marks_a_fresh_notebook_modified_only_for_the_kernels_language_info(lab, lab_page, name):
    jupyter_lab.open_notebook(lab_page, lab, name)
    assert jupyter_lab.is_modified(lab_page)
    model = lab_page.evaluate(f"() => {jupyter_lab.NOTEBOOK}.context.model.toJSON()")
    language_info = model["metadata"].pop("language_info")
    assert language_info["name"] == "python" and language_info["version"].startswith("3.")
    committed = json.loads((ROOT / name).read_text(encoding="utf-8"))
    assert model["metadata"] == committed["metadata"]
    for opened, cell in zip(model["cells"], committed["cells"], strict=True):
        opened["metadata"].pop("trusted", None)  # the page's own flag: JupyterLab does not save it
        assert opened["source"] == "".join(cell["source"]) and opened["metadata"] == cell["metadata"]
    # The same notebook with the kernel's language_info already in it opens unmodified.
    committed["metadata"]["language_info"] = language_info
    (lab.folder / f"with-language-info-{name}").write_text(json.dumps(committed))
    jupyter_lab.open_notebook(lab_page, lab, f"with-language-info-{name}")
    assert not jupyter_lab.is_modified(lab_page)


@pytest.mark.parametrize("name", NOTEBOOKS[:1])  # the Chinese notebook's cell is the same code (papermill runs both)
def test_run_all_in_jupyterlab_shows_the_reference_plot(lab, lab_page, name):
    jupyter_lab.open_notebook(lab_page, lab, f"quick-{name}")
    jupyter_lab.run_all(lab_page, timeout=600)
    outputs = jupyter_lab.cell_outputs(lab_page)[REFERENCE_CELL]
    printed = "".join(o.get("text", "") for o in outputs if o["output_type"] == "stream")
    assert "3 次参考运行" in printed or "of 3 reference runs of `python dqn.py --episodes 40" in printed
    (width, height), *more = jupyter_lab.shown_images(lab_page, REFERENCE_CELL)
    assert not more and width > 300 and height > 200  # the band of the reference runs, drawn in the page
