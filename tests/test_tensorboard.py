"""--tensorboard: the event file holds what metrics.csv and evals.csv hold; without the package, one line."""

import math

import pytest

from beyond.tensorboard import EPISODE_TAGS, EVAL_TAGS
from conftest import SHORT, assert_one_line_error, finished_run, headless_env, read_metrics

event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator", reason="tensorboard is in requirements-dev.txt"
)


def test_the_event_file_holds_every_episode_and_evaluation(tmp_path_factory):
    run_dir, _ = finished_run(
        tmp_path_factory, "tb", *SHORT, "--watch", "0", "--snapshots", "0", "--eval-every", "100", "--tensorboard"
    )
    (event_file,) = run_dir.glob("events.out.tfevents.*")
    events = event_accumulator.EventAccumulator(str(event_file), size_guidance={event_accumulator.SCALARS: 0})
    events.Reload()

    def logged(tag):
        return [(e.step, e.value) for e in events.Scalars(tag)]

    episodes = read_metrics(run_dir / "metrics.csv")
    for column, tag in EPISODE_TAGS.items():
        expected = [(int(r["env_steps"]), float(r[column])) for r in episodes if math.isfinite(float(r[column]))]
        assert len(expected) >= (1 if column == "loss" else len(episodes)), column
        got = logged(tag)
        assert [step for step, _ in got] == [step for step, _ in expected], tag
        assert [value for _, value in got] == pytest.approx([value for _, value in expected], rel=1e-6), tag
    evals = read_metrics(run_dir / "evals.csv")
    assert len(evals) >= 3  # periodic ones and the final one
    for column, tag in EVAL_TAGS.items():
        got = logged(tag)
        assert [step for step, _ in got] == [int(e["env_steps"]) for e in evals], tag
        assert [value for _, value in got] == pytest.approx([float(e[column]) for e in evals], rel=1e-6), tag
    assert "hyperparameters/text_summary" in events.Tags()["tensors"]  # the flags, as CleanRL logs them


def test_without_tensorboard_installed_the_flag_is_one_line(dqn_cli, tmp_path):
    hidden = tmp_path / "hide"
    (hidden / "tensorboard").mkdir(parents=True)  # shadows the installed package, as if it were missing
    (hidden / "tensorboard" / "__init__.py").write_text("raise ImportError('No module named tensorboard')\n")
    result = dqn_cli("--tensorboard", "--episodes", "1", env=headless_env(PYTHONPATH=str(hidden)))
    assert_one_line_error(result, "--tensorboard", "pip install tensorboard")
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
