"""The notebooks: built from dqn.py's own code, and run top to bottom on a fresh kernel with no display."""

import json
import re
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
    expected = [code for name, code in sections.items() if name not in build.LEFT_OUT]
    for name in NOTEBOOKS:  # the same dqn.py code in both; the notebooks' own cells speak their language
        cells = code_cells(name)
        assert [cell for cell in cells if cell in sections.values()] == expected
        assert len(cells) == len(code_cells(NOTEBOOKS[0]))
        assert not any("__main__" in cell for cell in cells)  # in a kernel it would parse the kernel's argv
    for name in NOTEBOOKS:
        cells = json.loads((ROOT / name).read_text())["cells"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in cells if c["cell_type"] == "code")
        assert "parameters" in cells[1]["metadata"]["tags"]


def test_the_first_cell_runs_the_blogs_300_episodes_and_quick_runs_40():
    namespace = {}
    for quick, episodes, learning_starts in [(False, 300, None), (True, 40, 200)]:
        for name in NOTEBOOKS:
            parameters, settings = code_cells(name)[:2]
            exec(parameters, namespace)
            namespace["quick"] = quick  # what editing the cell, or papermill's -p quick, does
            exec(settings, namespace)
            assert (namespace["episodes"], namespace["learning_starts"]) == (episodes, learning_starts)


# One notebook with the kernel's own inline backend, the other with MPLBACKEND=Agg set, as
# some setups have: the plots must show either way.
@pytest.mark.parametrize("name, backend", [("dqn.ipynb", None), ("dqn.zh-CN.ipynb", "Agg")])
def test_the_notebook_runs_on_a_fresh_kernel_and_shows_the_plot_and_the_agent(name, backend, tmp_path):
    executed = tmp_path / name
    command = [sys.executable, "-m", "papermill", str(ROOT / name), str(executed), "--cwd", str(ROOT), "-k", "python3"]
    command += ["-p", "quick", "True", "-p", "out_dir", str(tmp_path)]
    env = headless_env(**({"MPLBACKEND": backend} if backend else {}))
    env.pop("OMP_NUM_THREADS", None)  # the kernel gets torch's own default, as a learner's does
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = [o for c in json.loads(executed.read_text())["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    printed = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
    texts = ["".join(o.get("data", {}).get("text/plain", "")) for o in outputs]
    # Where the progress bar was, the saved notebook keeps a line that says what ran.
    (finished,) = [t for t in texts if "torch" in t]
    numbers = [int(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?![\d.])", finished)]
    assert numbers[0] == 40 and numbers[2] > 500  # 40 episodes; a short run, but one that learns
    assert finished.endswith(("torch threads: 1)", "torch 线程数 1）"))  # the kernel trains on one thread
    assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the reward plot and the value plot
    videos = [o for o in outputs if "<video" in "".join(o.get("data", {}).get("text/html", ""))]
    gifs = [o for o in outputs if "image/gif" in o.get("data", {})]
    assert len(videos) + len(gifs) == 2  # the trained agent and the learning video, inside the notebook
    assert "learning video: " in printed and "watch episode 1/1" in printed
    assert not [o for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr"], outputs
    assert_git_status_is_clean_after_saving(executed, name, tmp_path / "clone")


def assert_git_status_is_clean_after_saving(executed, name, clone):
    """The README's nbstripout set-up, then a run notebook saved over the committed one, then its git add."""
    pytest.importorskip("nbstripout", reason="requirements-dev.txt has it")
    clone.mkdir()  # a repository holding the committed notebooks, as a fresh clone does
    for notebook in NOTEBOOKS:
        (clone / notebook).write_bytes((ROOT / notebook).read_bytes())
    git = ["git", "-c", "user.name=learner", "-c", "user.email=learner@example.com"]
    for command in [["init", "-q"], ["add", "."], ["commit", "-q", "-m", "the committed notebooks"]]:
        subprocess.run(git + command, cwd=clone, check=True)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    setup = next(b for b in blocks if "nbstripout --install" in b)
    after_saving = next(b for b in blocks if b.startswith("git add"))
    for line in [*setup.splitlines(), "SAVE", *after_saving.splitlines()]:
        command = line.split("#")[0].strip()
        if command == "SAVE":
            (clone / name).write_text(as_jupyter_saves_it(executed), encoding="utf-8")
        elif command and not command.startswith("pip "):
            subprocess.run(command.split(), cwd=clone, check=True, capture_output=True)
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == ""


def as_jupyter_saves_it(executed):
    """papermill's output without what papermill itself adds: its parameters cell, its metadata, empty tags."""
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    notebook["cells"] = [c for c in notebook["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
    for holder in [notebook, *notebook["cells"]]:
        holder["metadata"].pop("papermill", None)
        if holder["metadata"].get("tags") == []:
            del holder["metadata"]["tags"]
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


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


# Chinese has no spaces between words, and a browser shows a line break inside a paragraph as one.
CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
CJK_GAP = re.compile(f"[{CJK}](?: +|\\n[ \\t]*(?:> )?)[{CJK}]")


def chinese_markdown():
    """{name: markdown text} of every Chinese page: the README, docs/ and the Chinese notebook's prose cells."""
    pages = {path.name: path.read_text(encoding="utf-8") for path in [ROOT / "README.zh-CN.md"]}
    pages.update({path.name: path.read_text(encoding="utf-8") for path in (ROOT / "docs").glob("*.zh-CN.md")})
    cells = json.loads((ROOT / "dqn.zh-CN.ipynb").read_text(encoding="utf-8"))["cells"]
    prose = [c for c in cells if c["cell_type"] == "markdown"]
    pages.update({f"dqn.zh-CN.ipynb cell {c['id']}": "".join(c["source"]) for c in prose})
    return pages


def test_no_chinese_page_breaks_a_line_or_puts_a_space_between_two_chinese_characters():
    pages = chinese_markdown()
    assert len(pages) > 10
    gaps = []
    for name, text in pages.items():
        prose = re.sub(r"```.*?```", "", text, flags=re.S)  # code blocks keep their own layout
        gaps += [f"{name}: {prose[m.start() - 10 : m.end() + 10]!r}" for m in CJK_GAP.finditer(prose)]
    assert not gaps, "\n".join(gaps)
    assert CJK_GAP.search("小车上的 杆子") and CJK_GAP.search("小车上的\n杆子") and not CJK_GAP.search("小车。\n\n杆子")


def test_the_value_plots_axis_labels_lie_inside_the_saved_figure():
    from beyond.values import value_figure

    values = [dict(env_steps=s, q_estimate=s / 1e4, true_return=s / 9e3) for s in range(1000, 120_000, 10_000)]
    figure = value_figure(values)
    figure.canvas.draw()
    inside = figure.bbox
    for label in (figure.axes[0].xaxis.label, figure.axes[0].yaxis.label):
        box = label.get_window_extent()
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, label


def test_the_progress_bar_counts_env_steps_and_has_no_total_it_cannot_know(capsys):
    import dqn
    from beyond.hooks import NotebookProgress

    agent = dqn.DQN(4, 2, seed=0, memory_capacity=200)
    progress = NotebookProgress(agent, episodes=30)
    records = dqn.train(agent, dqn.make_env(), episodes=30, seed=0, log=None, hooks=progress)
    assert progress.bar.total is None  # a run's env steps are not known before it ends
    assert progress.bar.n == records[-1]["env_steps"] > 200
    assert progress.bar.postfix == "episode 30 of 30"
    progress.finish(records)
    finished = capsys.readouterr().out.splitlines()[-1]  # outside a kernel the line is printed
    assert finished.startswith(f"trained 30 episodes: {records[-1]['env_steps']:,} env steps")
    assert finished.endswith(f"torch threads: {__import__('torch').get_num_threads()})")


def test_two_moments_of_one_long_episode_get_two_lines_on_the_reward_plot():
    import dqn
    from beyond.watching import mark_snapshots

    records = [dict(episode=i, steps=10, reward=1.0, learning=True, env_steps=10 * (i + 1)) for i in range(39)]
    records.append(dict(episode=39, steps=1000, reward=9.0, learning=True, env_steps=1390))
    moments = [dict(episode=39, env_steps=890), dict(episode=39, env_steps=1390), dict(episode=5, env_steps=55)]
    figure = mark_snapshots(dqn.plot(records), moments, records)
    lines = [line.get_xdata()[0] for line in figure.axes[0].lines[1:]]
    assert lines == pytest.approx([39.5, 40.0, 5.5])


def test_the_chinese_notebook_translates_every_word_of_the_reward_plot():
    import dqn
    from beyond.chinese import PLOT, translated
    from beyond.watching import mark_snapshots

    records = [dict(episode=i, steps=10, reward=1.0, learning=True, env_steps=10 * (i + 1)) for i in range(5)]
    figure = mark_snapshots(dqn.plot(records), [dict(episode=2, env_steps=25)], records)
    translated(figure, PLOT)
    texts = [t.get_text() for ax in figure.axes for t in (ax.title, ax.xaxis.label, ax.yaxis.label)]
    assert {"回合奖励", "步数（杆子立住）", "回合"} <= set(texts) and "虚线" in texts[0]
    english = [word for text in texts for word in re.findall(r"[A-Za-z]+", text) if word not in ("DQN", "CartPole")]
    assert not english, texts
