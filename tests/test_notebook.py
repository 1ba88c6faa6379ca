"""The notebooks: built from dqn.py's own code, and run top to bottom on a fresh kernel with no display."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dqn
from conftest import ROOT, headless_env, quick_reference

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
    env = headless_env(
        **({"MPLBACKEND": backend} if backend else {}), DQN_REFERENCE_RUNS=str(quick_reference(tmp_path))
    )
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
    # the reward plot, this run over its reference runs' band, and the value plot
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3
    assert "3 次参考运行" in printed or "of 3 reference runs of `python dqn.py --episodes 40" in printed
    videos = [o for o in outputs if "<video" in "".join(o.get("data", {}).get("text/html", ""))]
    gifs = [o for o in outputs if "image/gif" in o.get("data", {})]
    assert len(videos) + len(gifs) == 2  # the trained agent and the learning video, inside the notebook
    english = "learning video: " in printed and "watch episode 1/1" in printed
    chinese = "学习过程视频：" in printed and "观看第 1/1 回合" in printed  # printed in Chinese, with a font or without
    assert english if name == "dqn.ipynb" else chinese and "watch episode" not in printed
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
        elif command and not command.startswith("pip "):  # a venv's tools, found as an activated venv finds them
            subprocess.run(command.split(), cwd=clone, check=True, capture_output=True, env=venv_on_path())
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == ""


def venv_on_path():
    """This environment with the running Python's scripts first on PATH, where `pip install` put nbstripout.

    An IDE runs `venv/bin/python -m pytest` without activating the venv: its tools are not on PATH.
    """
    return {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}


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


# Full-width punctuation carries its own space: a space or a line break beside it shows as a gap.
FULL_WIDTH = "，。、；：！？（）【】《》「」『』“”"
PUNCTUATION_GAP = re.compile(  # a table's cell borders and a new block (list, quote, heading) are not gaps
    f"[{FULL_WIDTH}] +[^\\s|]|[^\\s|] +[{FULL_WIDTH}]"
    f"|[{FULL_WIDTH}]\\n(?=[^\\n\\-*#>|\\d ])|[^\\n|]\\n(?=[{FULL_WIDTH}])"
)


def test_no_chinese_page_puts_a_space_or_a_line_break_beside_full_width_punctuation():
    gaps = []
    for name, text in chinese_markdown().items():
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        gaps += [f"{name}: {prose[m.start() - 10 : m.end() + 10]!r}" for m in PUNCTUATION_GAP.finditer(prose)]
    assert not gaps, "\n".join(gaps)
    for bad in ("填得下。 DQN", "缓冲区， `learn`", "notebook` （或", "填得下。\nDQN", "notebook`\n（或"):
        assert PUNCTUATION_GAP.search(bad), bad
    for good in ("| 30（0–29） | 学习", "填得下。\n\nDQN", "如下：\n- 一", "同一个 DQN 还能"):
        assert not PUNCTUATION_GAP.search(good), good


def test_the_chinese_notebook_prints_and_draws_its_watching_in_chinese():
    from beyond import overlay
    from beyond.chinese import DRAWN, PRINTED

    assert set(PRINTED) | set(DRAWN) == set(overlay.WORDS)
    actions, gauges = overlay.READOUTS["CartPole"]
    env = dqn.make_env("CartPole-v1", unwrapped=False)
    env.reset(seed=0)
    shown = [*actions, *(g.name for g in gauges(None, env.unwrapped))]
    assert all(name in DRAWN["names"] for name in shown)
    for key, english in overlay.WORDS.items():  # the same fields to fill in, in other words
        chinese = {**PRINTED, **DRAWN}[key]
        if isinstance(english, str):
            assert sorted(re.findall(r"\{(\w+)", chinese)) == sorted(re.findall(r"\{(\w+)", english)), key
            assert chinese != english, key


def test_the_value_plots_axis_labels_lie_inside_the_saved_figure():
    from beyond.values import value_figure

    values = [dict(env_steps=s, q_estimate=s / 1e4, true_return=s / 9e3) for s in range(1000, 120_000, 10_000)]
    figure = value_figure(values)
    figure.canvas.draw()
    inside = figure.bbox
    for label in (figure.axes[0].xaxis.label, figure.axes[0].yaxis.label):
        box = label.get_window_extent()
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, label


def test_the_progress_display_fills_the_memory_then_counts_what_is_known(capsys, monkeypatch):
    import dqn
    from beyond.hooks import NotebookProgress

    drawings = []
    monkeypatch.setattr(NotebookProgress, "redraw", lambda self: drawings.append(self.html()))
    agent = dqn.DQN(4, 2, seed=0, memory_capacity=200)
    progress = NotebookProgress(agent, episodes=30)
    records = dqn.train(agent, dqn.make_env(), episodes=30, seed=0, log=None, hooks=progress)
    drawings.append(progress.html())
    filling = [d for d in drawings if d.startswith("<progress")]
    learning = [d for d in drawings if d.startswith("learning: ")]
    assert len(filling) + len(learning) == len(drawings) and drawings[: len(filling)] == filling  # two phases, in order
    assert 'max="201"' in filling[0] and "of 201 transitions" in filling[-1]  # a bar with a known end
    assert [int(d.split('value="')[1].split('"')[0]) for d in filling] == sorted(
        int(d.split('value="')[1].split('"')[0]) for d in filling
    )
    assert learning[-1].startswith(f"learning: episode 30 of at most 30 · {records[-1]['env_steps']:,} env steps · ")
    assert learning[-1].endswith(" env steps/s")
    assert not any(mark in d for d in drawings for mark in ("?", "<00", "remaining", "eta"))  # no invented time left
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
