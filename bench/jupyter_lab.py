"""A notebook run as a learner runs it: a JupyterLab server, Debian's chromium on it (Playwright), Run All.

    with lab_server(folder) as lab, chromium() as browser:
        page = lab_page(browser)
        open_notebook(page, lab, "dqn.ipynb")
        seconds = run_all(page, timeout=600)

The server serves a folder of its own (a copy of the notebook, so that autosave writes
nowhere else) with the repository on the kernel's PYTHONPATH; it keeps its settings,
workspaces and runtime files in that folder too, so a learner's own JupyterLab
configuration changes nothing. `window.jupyterapp` is exposed, so that Run All is the same
command as the Run menu's, and the cells are read from the model the page renders.
"""

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")
NOTEBOOK = "window.jupyterapp.shell.currentWidget"


@dataclass
class Lab:
    url: str
    token: str
    folder: Path


def cell_index(notebook, text):
    """The index of the first cell of the notebook at path notebook whose source holds text."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    return next(i for i, cell in enumerate(cells) if text in "".join(cell["source"]))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_settings(notebook_text, old, new):
    """The notebook's text with old replaced by new in its first code cell (its settings), as a learner edits it."""
    notebook = json.loads(notebook_text)
    settings = notebook["cells"][1]
    source = "".join(settings["source"])
    if old not in source:
        raise ValueError(f"{old!r} is not in the notebook's settings cell")
    settings["source"] = source.replace(old, new, 1)
    return json.dumps(notebook)


def lab_environment(folder, extra=None):
    """The server's (and so its kernels') environment: headless, the repository importable, nothing of the user's."""
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR"):
        env[name] = str(folder / ".jupyter" / name.lower())
    return {**env, **(extra or {})}


@contextlib.contextmanager
def lab_server(folder, env=None, start_timeout=90):
    """A JupyterLab server on folder, on a free local port with a fresh token; stopped on exit."""
    folder = Path(folder)
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1"]
    command += [f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}", "--allow-root"]
    command += ["--LabApp.expose_app_in_browser=True", "--LabApp.news_url=", "--ServerApp.open_browser=False"]
    url = f"http://127.0.0.1:{port}"
    with open(folder / ".jupyter-server.log", "w") as log:
        server = subprocess.Popen(command, env=lab_environment(folder, env), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(f"{url}/api/status?token={token}", server, start_timeout)
            yield Lab(url, token, folder)
        finally:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()


def wait_until_up(status_url, server, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the JupyterLab server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(status_url, timeout=2):
                return
        except OSError:
            time.sleep(0.25)
    raise TimeoutError(f"no JupyterLab server after {timeout} s")


@contextlib.contextmanager
def chromium():
    """Debian's chromium driven by Playwright (never `playwright install`), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def lab_page(browser):
    """A page the size of a laptop's browser window."""
    return browser.new_page(viewport=dict(width=1280, height=900))


def open_notebook(page, lab, name, timeout=90):
    """Open lab's notebook name in page and wait until its kernel is idle."""
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")  # reset: no notebook of the last visit reopens
    page.wait_for_function(
        f"() => window.jupyterapp && {NOTEBOOK} && {NOTEBOOK}.context && {NOTEBOOK}.context.path === {name!r}"
        f" && {NOTEBOOK}.sessionContext.kernelDisplayStatus === 'idle'",
        timeout=timeout * 1000,
    )


def is_modified(page):
    """Whether JupyterLab marks the open notebook as changed since it was opened or saved."""
    return page.evaluate(f"() => {NOTEBOOK}.context.model.dirty")


def run_all(page, timeout):
    """Run All (the Run menu's command) and wait until every code cell has run; return the seconds it took.

    Raises RuntimeError on the first cell with an error, as Run All stops there.
    """
    start = time.perf_counter()
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    deadline = start + timeout
    while time.perf_counter() < deadline:
        state = page.evaluate(
            f"""() => {{
                const cells = {NOTEBOOK}.content.model.cells;
                let waiting = 0, error = null;
                for (let i = 0; i < cells.length; i++) {{
                    const cell = cells.get(i);
                    if (cell.type !== 'code') continue;
                    if (cell.executionCount === null) waiting++;
                    const outputs = cell.outputs.toJSON();
                    const failed = outputs.find(o => o.output_type === 'error');
                    if (failed && error === null) error = `cell ${{i}}: ${{failed.ename}}: ${{failed.evalue}}`;
                }}
                return {{waiting, error}};
            }}"""
        )
        if state["error"]:
            raise RuntimeError(state["error"])
        if state["waiting"] == 0:
            return time.perf_counter() - start
        time.sleep(0.5)
    raise TimeoutError(f"Run All did not finish in {timeout} s")


def cell_outputs(page):
    """Each cell's outputs as nbformat JSON, as the page holds them."""
    return page.evaluate(
        f"""() => {{
            const cells = {NOTEBOOK}.content.model.cells, all = [];
            for (let i = 0; i < cells.length; i++) {{
                const cell = cells.get(i);
                all.push(cell.type === 'code' ? cell.outputs.toJSON() : []);
            }}
            return all;
        }}"""
    )


def shown_images(page, cell_index):
    """The images a cell's output area shows in the page, scrolled into view: (width, height) of each."""
    page.evaluate(f"() => {NOTEBOOK}.content.scrollToItem({cell_index})")
    cell = page.locator(".jp-Notebook .jp-Cell").nth(cell_index)
    cell.scroll_into_view_if_needed()
    images = cell.locator(".jp-OutputArea-output img")
    images.first.wait_for(state="visible", timeout=10_000)
    return [(box["width"], box["height"]) for box in (img.bounding_box() for img in images.all()) if box]
