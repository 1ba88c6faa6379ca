"""The notebooks: built from dqn.py's own code, and run top to bottom on a fresh kernel with no display."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT, headless_env

NOTEBOOKS = ["dqn.ipynb", "dqn.zh-CN.ipynb"]


def code_cells(name):
    return ["".join(c["source"]) for c in json.loads((ROOT / name).read_text())["cells"] if c["cell_type"] == "code"]


def test_the_committed_notebooks_are_what_the_build_makes():
    result = subprocess.run([sys.executable, "notebooks/build.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_notebooks_show_dqn_pys_code_and_no_outputs():
    sys.path.insert(0, str(ROOT / "notebooks"))
    import build

    sections = build.dqn_sections()
    english, chinese = code_cells("dqn.ipynb"), code_cells("dqn.zh-CN.ipynb")
    assert english == chinese  # the same code; only the prose is translated
    shown = [cell for cell in english if cell in sections.values()]
    assert shown == [code for name, code in sections.items() if name not in build.LEFT_OUT]
    assert not any("__main__" in cell for cell in english)  # in a kernel it would parse the kernel's argv
    for name in NOTEBOOKS:
        cells = json.loads((ROOT / name).read_text())["cells"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")
        assert "parameters" in cells[1]["metadata"]["tags"]


# One notebook with the kernel's own inline backend, the other with MPLBACKEND=Agg set, as
# some setups have: the plots must show either way.
@pytest.mark.parametrize("name, backend", [("dqn.ipynb", None), ("dqn.zh-CN.ipynb", "Agg")])
def test_the_notebook_runs_on_a_fresh_kernel_and_shows_the_plot_and_the_agent(name, backend, tmp_path):
    executed = tmp_path / name
    command = [sys.executable, "-m", "papermill", str(ROOT / name), str(executed), "--cwd", str(ROOT), "-k", "python3"]
    command += ["-p", "episodes", "40", "-p", "learning_starts", "200", "-p", "out_dir", str(tmp_path)]
    env = headless_env(**({"MPLBACKEND": backend} if backend else {}))
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = [o for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    printed = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
    learn_steps = int(printed.split(" learn steps")[0].split()[-1])
    assert learn_steps > 500  # a short run, but one that learns
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the reward plot and the value plot
    videos = [o for o in outputs if "<video" in "".join(o.get("data", {}).get("text/html", ""))]
    gifs = [o for o in outputs if "image/gif" in o.get("data", {})]
    assert len(videos) + len(gifs) == 2  # the trained agent and the learning video, inside the notebook
    assert "learning video: after" in printed and "watch episode 1/1" in printed
    # The progress bar is a notebook widget, not text on stderr.
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert not [o for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr"], outputs


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_nbstripout_turns_a_run_notebook_back_into_the_committed_one(name):
    """So that after `nbstripout --install` (README) a notebook that has run shows no change in git."""
    pytest.importorskip("nbstripout", reason="requirements-dev.txt has it")
    committed = (ROOT / name).read_text(encoding="utf-8")
    run = json.loads(committed)
    for i, cell in enumerate(c for c in run["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = i + 1
        cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["trained\n"]}]
    run["metadata"]["language_info"] = {"name": "python", "version": "3.11.7", "mimetype": "text/x-python"}
    # --extra-keys: what the README sets as filter.nbstripout.extrakeys
    command = [sys.executable, "-m", "nbstripout", "-t", "--extra-keys", "metadata.language_info"]
    stripped = subprocess.run(command, input=json.dumps(run), capture_output=True, text=True, check=True)
    assert stripped.stdout == committed
