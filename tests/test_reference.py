"""Is my run normal? Reference runs, a run's place among them, the band in its plot, and each failure named."""

import dataclasses
import json
import sys
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import reference_runs  # noqa: E402

import dqn  # noqa: E402
from beyond import cli, reference  # noqa: E402
from beyond.config import PRESETS  # noqa: E402
from beyond.flags import parse_args  # noqa: E402
from beyond.reference import (  # noqa: E402
    NO_REFERENCE,
    add_reference_band,
    band,
    behind,
    collapse,
    diagnoses,
    never_learned,
    placement,
    settings_of,
    value_blow_up,
)
from beyond.tasks import TASKS  # noqa: E402

NORMAL_RUN_PAGE = (ROOT / "docs" / "normal-run.md").read_text(encoding="utf-8")


def made_reference(flags, runs, command="python dqn.py (the test's)"):
    """A reference file's dict for flags, with the given runs."""
    settings = json.loads(json.dumps(settings_of(parse_args(flags))))
    return dict(command=command, flags=flags, settings=settings, made_by="the test", runs=runs)


def run(seed, curve, solved_at=None, final_return=None):
    return dict(seed=seed, curve=curve, solved_at=solved_at, final_return=final_return, env_steps=curve[-1][0])


# ---------------------------------------------------------------------------------------
# Each detector, on a record that has the failure and one that does not
# ---------------------------------------------------------------------------------------
def test_collapse_is_a_pass_followed_by_a_fall_more_than_halfway_back_to_random():
    fell = [(1000, 100.0), (2000, 480.0), (3000, 490.0), (4000, 120.0)]
    line = collapse(fell, 475, 25, keep_best=False, evals=[])
    assert line.startswith("collapse: greedy return 480.0 at 2,000 env steps, then 120.0 at 4,000")
    assert "docs/normal-run.md#collapse" in line and "keep-best" not in line
    kept = collapse(fell, 475, 25, keep_best=True, evals=[dict(mean=480.0, final=1)])
    assert kept.endswith("--keep-best kept the weights that passed")
    assert collapse([(1000, 480.0), (2000, 300.0)], 475, 25, False, []) is None  # above halfway (250): a dip
    assert collapse([(1000, 100.0), (2000, 20.0)], 475, 25, False, []) is None  # never passed
    assert collapse([(1000, -90.0), (2000, -480.0)], -100, -500, False, []).startswith("collapse")  # negative returns


def test_value_blow_up_is_an_estimate_far_above_the_truth_and_pulling_away():
    def evals(pairs):
        return [dict(q_estimate=q, true_return=t, env_steps=1000 * i) for i, (q, t) in enumerate(pairs)]

    line = value_blow_up(evals([(10, 9), (30, 10), (60, 10), (150, 11)]))
    assert line.startswith("value blow-up: the net believes 150.0 where its policy gets 11.0")
    assert "#value-blow-up" in line
    assert value_blow_up(evals([(10, 9), (11, 10), (12, 10), (12.5, 11)])) is None  # close to the truth
    assert value_blow_up(evals([(9.5, 9), (11, 10), (12.5, 10.5), (13, 10.8)])) is None  # pulling away, but close
    assert value_blow_up(evals([(100, 9), (80, 10), (60, 10), (40, 11)])) is None  # far above, but coming back
    assert value_blow_up(evals([(100, 9), (200, 10)])) is None  # too few evaluations to see it grow


def test_never_learned_names_a_run_that_never_started_learning_and_one_stuck_at_random():
    args = SimpleNamespace(learning_starts=None, memory_capacity=2000, preset="blog", env="MountainCar-v0")
    idle = SimpleNamespace(learn_step_counter=0, learning_starts=2000)
    records = [dict(env_steps=1500)]
    line = never_learned(records, idle, args, [], 475, 25)
    assert line.startswith("never learned: learning starts after 2,000 transitions and the run stopped at 1,500")
    learner = SimpleNamespace(learn_step_counter=10)
    stuck = never_learned(records, learner, args, [(1000, 20.0), (2000, 30.0)], 475, 25)
    assert stuck.startswith("never learned: every greedy evaluation stayed near the random policy's 25; ")
    assert "--preset tuned --env MountainCar-v0 is measured to learn it" in stuck  # what to try
    args.preset = "tuned"  # the preset itself: nothing to point at
    assert "--preset" not in never_learned(records, learner, args, [(1000, 20.0), (2000, 30.0)], 475, 25)
    assert never_learned(records, learner, args, [(1000, 20.0), (2000, 200.0)], 475, 25) is None


def test_behind_is_below_the_references_10th_percentile_at_the_same_env_steps():
    ref = made_reference([], [run(s, [(1000, 100.0 + 10 * s), (2000, 200.0 + 10 * s)]) for s in range(10)])
    _, low, median, high = band(ref, np.array([2000.0]))
    assert (low[0], median[0], high[0]) == pytest.approx((209, 245, 281))  # numpy's linear percentiles of 200..290
    line = behind([(1000, 150.0), (2000, 205.0)], ref)
    assert line.startswith("behind the reference: greedy return 205.0 at 2,000 env steps") and "(209.0)" in line
    assert behind([(1000, 150.0), (2000, 230.0)], ref) is None


def test_a_reference_run_that_stopped_keeps_its_last_value_in_the_band():
    ref = made_reference([], [run(0, [(1000, 500.0)], solved_at=1000), run(1, [(1000, 10.0), (3000, 20.0)])])
    steps, low, median, high = band(ref)
    assert list(steps) == [1000, 3000] and median[-1] == pytest.approx(260.0)  # the solved run counts at 3,000


# ---------------------------------------------------------------------------------------
# The placement line
# ---------------------------------------------------------------------------------------
def test_the_placement_of_a_solved_run_counts_the_faster_reference_runs():
    flags = ["--preset", "tuned"]
    runs = [run(s, [(1000 * (s + 1), 500.0)], solved_at=1000 * (s + 1)) for s in range(9)] + [run(9, [(9, 1.0)])]
    ref = made_reference(flags, runs, "python dqn.py --preset tuned")
    line = placement(dict(solved_at=3500, final_return=500.0, env_steps=3500, curve=[]), ref)
    expected = "solved at 3,500 env steps; 3 of 10 reference runs of `python dqn.py --preset tuned` were faster"
    assert line == expected + " (median 5,500)"
    unsolved = placement(dict(solved_at=None, final_return=30.0, env_steps=9000, curve=[]), ref)
    assert unsolved.startswith("not solved in 9,000 env steps; 9 of 10 reference runs")


def test_the_placement_of_a_blog_run_ranks_its_final_greedy_return():
    ref = made_reference([], [run(s, [(1, 1.0)], final_return=float(100 * s)) for s in range(5)], "python dqn.py")
    line = placement(dict(solved_at=None, final_return=250.0, env_steps=1, curve=[]), ref)
    assert line == "final greedy return 250.0: above 3 of 5 reference runs of `python dqn.py` (median 200.0)"
    perfect = [run(s, [(1, 1.0)], final_return=500.0 if s else 380.0) for s in range(5)]
    line = placement(dict(solved_at=None, final_return=500.0, env_steps=1, curve=[]), made_reference([], perfect))
    assert "above 1 and level with 4 of 5 reference runs" in line


SHORT_TUNED = ["--preset", "tuned", "--max-env-steps", "3000", "--eval-every", "500", "--eval-episodes", "2"]
QUIET = ["--seed", "0", "--watch", "0", "--snapshots", "0", "--no-show", "--quiet"]


def test_a_short_run_of_a_preset_is_placed_among_its_reference(tmp_path, monkeypatch, capsys):
    runs = [run(s, [(500 * (s + 1), 480.0)], solved_at=500 * (s + 1)) for s in range(6)]
    (tmp_path / "refs").mkdir()
    (tmp_path / "refs" / "short.json").write_text(json.dumps(made_reference(SHORT_TUNED, runs, "short")))
    monkeypatch.setattr(reference, "REFERENCE_DIR", tmp_path / "refs")
    assert cli.main([*SHORT_TUNED, *QUIET, "--runs-dir", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    solved = [line for line in out.splitlines() if line.startswith("early stop")]
    line = next(line for line in out.splitlines() if "reference runs of `short`" in line)
    if solved:
        steps = int(solved[0].split(" after ")[1].split()[0])
        faster = sum(500 * (s + 1) < steps for s in range(6))
        expected = f"solved at {steps:,} env steps; {faster} of 6 reference runs of `short` were faster"
        assert line == expected + " (median 1,750)"
    else:
        assert line.startswith("not solved in 3,000 env steps; 6 of 6 reference runs of `short` solved")


def test_a_run_with_its_own_flags_says_it_has_no_reference(tmp_path, capsys):
    flags = [*SHORT_TUNED, "--lr", "0.001", *QUIET, "--runs-dir", str(tmp_path / "runs")]
    assert cli.main(flags) == 0
    assert NO_REFERENCE in capsys.readouterr().out.splitlines()


# ---------------------------------------------------------------------------------------
# The band in the plot
# ---------------------------------------------------------------------------------------
def band_polygon_extent(ax):
    """The y-range of the grey band that fill_between drew on ax."""
    (fill,) = [c for c in ax.collections if c.get_label().endswith("reference runs: median, 10-90%")]
    ys = fill.get_paths()[0].vertices[:, 1]
    return ys.min(), ys.max()


def test_the_plot_draws_the_reference_band_behind_the_runs_evaluations():
    ref = made_reference([], [run(s, [(1000, 100.0 + s), (2000, 300.0 + 10 * s)]) for s in range(11)])
    evals = [dict(env_steps=1000, mean=90.0), dict(env_steps=2000, mean=250.0), dict(env_steps=2000, mean=250, final=1)]
    records = [dict(episode=i, reward=1.0, steps=10, learning=True, env_steps=10 * i) for i in range(5)]
    figure = add_reference_band(dqn.plot(records, evals), ref, dict(curve=[(1000, 90.0), (2000, 250.0)]))
    panel = figure.axes[2]
    assert band_polygon_extent(panel) == pytest.approx((101.0, 390.0))  # 10th at 1,000 env steps .. 90th at 2,000


def test_a_run_without_evaluations_gets_a_panel_of_its_snapshots_over_the_band():
    ref = made_reference([], [run(s, [(1000, 100.0 + s), (2000, 300.0 + 10 * s)]) for s in range(11)])
    records = [dict(episode=i, reward=1.0, steps=10, learning=True, env_steps=10 * i) for i in range(5)]
    figure = dqn.plot(records, [dict(env_steps=50, mean=20.0, final=1)])
    assert len(figure.axes) == 2
    add_reference_band(figure, ref, dict(curve=[(1000, 50.0), (2000, 250.0)]))
    panel = figure.axes[2]
    assert panel.get_ylabel() == "greedy return of\nthe video's copies"
    figure.canvas.draw()
    label, box = panel.yaxis.label.get_window_extent(), panel.get_window_extent()
    assert box.y0 <= label.y0 and label.y1 <= box.y1  # the label no longer than its panel
    assert list(panel.lines[0].get_ydata()) == [50.0, 250.0] and band_polygon_extent(panel)[1] == pytest.approx(390.0)


# ---------------------------------------------------------------------------------------
# The committed references
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, seeds",
    [
        ("blog", 30),
        ("tuned", 30),
        ("pixels", 8),
        ("tuned-Acrobot-v1", 30),
        ("tuned-MountainCar-v0", 30),
        ("tuned-LunarLander-v3", 30),
    ],
)
def test_the_presets_learners_run_have_references(name, seeds):
    ref = json.loads((reference.REFERENCE_DIR / f"{name}.json").read_text())
    assert len(ref["runs"]) >= seeds and all(r["curve"] for r in ref["runs"])
    assert ref["command"] == " ".join(["python dqn.py", *reference_runs.REFERENCES[name]])


@pytest.mark.parametrize("name", sorted(reference.load_references()))
def test_the_normal_run_page_gives_each_references_outcome_as_its_command_prints_it(name):
    ref = reference.load_references()[name]
    row = next(line for line in NORMAL_RUN_PAGE.splitlines() if line.startswith(f"| `{ref['command']}` |"))
    assert f"| {reference_runs.outcome_words(ref)} |" in row


def test_a_references_outcome_counts_unsolved_seeds_and_collapses():
    climbs, falls = [[1000, 100.0], [2000, 480.0]], [[1000, 480.0], [2000, 30.0]]
    runs = [
        dict(curve=climbs, solved_at=2000, final_return=480.0),
        dict(curve=falls, solved_at=None, final_return=30.0),
    ]
    settings = dict(env="CartPole-v1", early_stop=475.0, no_early_stop=False)
    words = reference_runs.outcome_words(dict(settings=settings, runs=runs))
    assert words.startswith("solved 1 of 2; solved at a median of unsolved") and words.endswith("a collapse on 1")
    words = reference_runs.outcome_words(dict(settings=dict(settings, early_stop=None), runs=runs))
    final = "final greedy return: median 255.0 [30.0, 480.0], 1 of 2 at 475 or more; lowest 30.0; a collapse on 1"
    assert words == final


def test_a_reference_from_before_an_extension_places_runs_without_it_only():
    ref = reference.load_references()["blog"]
    assert "hidden_layers" not in ref["settings"]  # made before --hidden-layers existed
    assert reference.matching(parse_args([]))["command"] == ref["command"]
    assert reference.matching(parse_args(["--hidden-layers", "2"])) is None


def test_every_reference_was_made_with_its_presets_flags_of_today():
    assert reference_runs.stale() == []


@pytest.mark.parametrize("name", sorted(reference_runs.REFERENCES.keys() - {"pixels"}))
def test_remaking_a_current_reference_runs_no_seed(monkeypatch, name):
    """Rows written before a setting existed count as run at its old value, as --check reads them."""
    trained = []
    monkeypatch.setattr(reference_runs, "in_pool", lambda work, tasks, jobs: trained.extend(tasks) or [])
    runs = reference_runs.run_reference(name, reference_runs.REPORT_SEEDS, jobs=1)
    assert trained == [] and [run["seed"] for run in runs] == list(reference_runs.REPORT_SEEDS)


@pytest.mark.parametrize("name", sorted(p.stem for p in reference.REFERENCE_DIR.glob("tuned-*.json")))
def test_a_changed_task_row_makes_its_reference_stale(monkeypatch, name):
    env_id = name.removeprefix("tuned-")
    monkeypatch.setitem(TASKS, env_id, dataclasses.replace(TASKS[env_id], budget=TASKS[env_id].budget + 1000))
    assert reference_runs.stale() == [name]


def test_a_changed_preset_makes_its_reference_stale(monkeypatch):
    monkeypatch.setitem(PRESETS, "tuned", dict(PRESETS["tuned"], lr=0.002))
    assert "tuned" in reference_runs.stale()


def test_a_run_that_solved_has_no_collapse_whatever_its_earlier_passes_did():
    """Acrobot's evaluations bounce: a pass that did not hold, a fall to -480, then a confirmed solve."""
    args = parse_args(["--preset", "tuned", "--env", "Acrobot-v1"])
    curve = [(8000, -98.7), (10000, -481.9), (12000, -90.0)]
    agent = SimpleNamespace(learn_step_counter=100)
    records = [dict(env_steps=12000)]
    solved = dict(curve=curve, solved_at=12000, final_return=-90.0, env_steps=12000)
    assert not [line for line in diagnoses(solved, [], records, args, agent) if line.startswith("collapse")]
    unsolved = dict(solved, solved_at=None)
    assert [line for line in diagnoses(unsolved, [], records, args, agent) if line.startswith("collapse")]
