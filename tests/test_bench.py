"""The benches behind the docs' numbers: the judge, the statistics, the tuner and the ablation's resuming."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import ablation  # noqa: E402
import intervals  # noqa: E402
import judge  # noqa: E402

from beyond.config import PRESETS  # noqa: E402


def test_median_and_iqm_are_the_textbook_ones():
    assert intervals.summarize(range(1, 11))["median"] == 5.5
    assert intervals.summarize([1, 2, 3, 4, 5, 6, 7, 100])["iqm"] == 4.5  # the mean of 3, 4, 5, 6
    assert intervals.summarize([1, 2, 3, 4, 5, 6, 7, 100])["median"] == 4.5
    # a quarter trimmed from each end (2 of 8), not a fifth (1 of 8, which would give 40 / 6)
    assert intervals.summarize([1, 2, 3, 4, 5, 6, 20, 100])["iqm"] == 4.5


def test_bootstrap_interval_of_a_fixed_sample():
    # Resamples of five 0s and five 1s have a median of 0, 0.5 or 1, and each end has
    # probability 0.377 (at most four 1s drawn): the 95% percentile interval is [0, 1].
    summary = intervals.summarize([0] * 5 + [1] * 5)
    assert summary["median"] == 0.5 and summary["median_ci"] == (0.0, 1.0)
    assert intervals.summarize([7, 7, 7])["median_ci"] == (7, 7)  # nothing to resample
    wide = intervals.summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])["median_ci"]
    narrow = intervals.summarize(list(range(1, 11)) * 10)["median_ci"]
    assert wide[0] < narrow[0] <= 5.5 <= narrow[1] < wide[1]  # ten times the seeds, a narrower interval
    assert intervals.summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], seed=0) == intervals.summarize(range(1, 11), seed=0)


def test_ties_count_half_in_the_probability_of_improvement():
    assert intervals.probability_of_improvement([3, 3, 3], [3, 3, 3])[0] == 0.5
    # pairs (1, 2) win, (1, 3) win, (2, 2) tie, (2, 3) win: 3.5 of 4
    assert intervals.probability_of_improvement([1, 2], [2, 3])[0] == 0.875
    assert intervals.probability_of_improvement([np.inf] * 2, [np.inf] * 2)[0] == 0.5  # unsolved seeds tie


def test_the_ratio_of_medians_and_its_interval():
    ratio, (low, high) = intervals.ratio_of_medians([1, 2, 3, 4, 5], [10, 20, 30, 40, 50])
    assert ratio == 0.1 and 1 / 50 <= low <= 0.1 <= high <= 5 / 10  # a resample's medians lie in each row's range
    wider = intervals.ratio_of_medians([1, 2, 3, 4, 50], [10, 20, 30, 40, 50])[1]
    assert wider[1] > high  # a slow seed in the first row widens the interval upwards


def test_unsolved_seeds_count_as_the_worst():
    summary = intervals.summarize([5000, 6000, 7000, np.inf, np.inf, np.inf])
    assert summary["median"] == np.inf and summary["median_ci"][1] == np.inf
    low = summary["median_ci"][0]
    assert 5000 <= low <= 7000  # the interval's good end is still a number of steps
    assert intervals.fmt_summary(summary, budget=30_000)[0] == f"unsolved [{low:,.0f}, unsolved]"
    assert intervals.summarize([5000, 6000, 7000, 8000, np.inf])["median"] == 7000


def test_the_judge_solves_confirms_and_stops_where_it_solved():
    result = judge.judge(["--env", "CartPole-v0", "--reward", "shaped"], seed=0, budget=10_000)
    assert result["solved_at"] is not None, result["evals"]
    steps, mean = result["evals"][-1]
    assert steps == result["solved_at"] and mean >= judge.SOLVED
    assert all(m < judge.SOLVED for _, m in result["evals"][:-1])  # the first evaluation to pass
    assert [s for s, _ in result["evals"]] == list(range(1000, steps + 1, 1000))
    assert result["env_steps"] <= steps + 1  # training stopped there
    assert judge.SOLVED <= result["confirm_mean"] <= 500 and result["unconfirmed"] == []


def test_a_pass_that_does_not_confirm_is_recorded_and_training_goes_on():
    # seed 1 of the blog's task passes at 5,000 env steps (489.65), but its agent averages
    # 463.88 on the 100 fresh episodes; the next evaluation's agent confirms
    result = judge.judge(["--env", "CartPole-v0", "--reward", "shaped"], seed=1, budget=10_000)
    ((steps, mean, confirmation),) = result["unconfirmed"]
    assert (steps, mean) in result["evals"] and mean >= judge.SOLVED > confirmation
    assert result["solved_at"] > steps and result["confirm_mean"] >= judge.SOLVED
    assert result["env_steps"] <= result["solved_at"] + 1


def test_the_tuning_report_and_held_out_seeds_are_disjoint():
    sets = [set(judge.TUNING_SEEDS), set(judge.REPORT_SEEDS), set(judge.HELD_OUT_SEEDS)]
    assert all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1 :])
    assert len(sets[1]) >= 30 and len(sets[2]) >= 30 and set(range(1000, 1005)) <= sets[0]


def test_each_confirmation_of_a_seed_plays_its_own_episodes():
    def episodes(seed, attempt):
        return set(range(judge.confirm_seed(seed, attempt), judge.confirm_seed(seed, attempt) + judge.CONFIRM_EPISODES))

    for seed in (0, 7, 1019, 5029):
        periodic = set(range(10_000 + seed, 10_000 + seed + judge.EVAL_EPISODES))
        attempts = [episodes(seed, k) for k in range(5)]
        assert all(not (a & periodic) for a in attempts)
        assert all(not (a & b) for i, a in enumerate(attempts) for b in attempts[i + 1 :])


def test_the_judge_counts_an_unsolved_seed_as_unsolved():
    result = judge.judge([], seed=0, budget=2000)  # the blog's defaults on CartPole-v1: nothing yet at 2,000
    assert result["solved_at"] is None and result["confirm_mean"] is None
    assert result["env_steps"] == 2000


def test_the_tuner_runs_trials_into_sqlite_and_resumes(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [sys.executable, "tune.py", "--seeds", "1000", "--budget", "1500", "--storage", storage]
    for n_trials in (2, 3):
        out = subprocess.run(
            [*command, "--n-trials", str(n_trials), "--out", str(tmp_path)],
            cwd=ROOT / "bench",
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert f"{n_trials} trials" in out.stdout
    rows = (tmp_path / "tune_trials.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # the second run added one trial to the first run's two
    assert "lr" in rows[0] and "n_step" in rows[0] and "prioritized" in rows[0]  # the columns of the search

    trials = trials_without_timings(tmp_path / "tune_trials.csv")
    assert trials[2]["lr"] not in (trials[0]["lr"], trials[1]["lr"])  # the resumed run proposed anew

    reruns = []
    for name in ("first", "second"):  # from an empty study, one worker, the same seed: the same trials
        storage = f"sqlite:///{tmp_path / name}.db"
        command = [sys.executable, "tune.py", "--seeds", "1000", "--budget", "1500", "--storage", storage]
        subprocess.run([*command, "--n-trials", "2", "--out", str(tmp_path / name)], cwd=ROOT / "bench", check=True)
        reruns.append(trials_without_timings(tmp_path / name / "tune_trials.csv"))
    assert reruns[0] == reruns[1] == trials[:2]


def trials_without_timings(path):
    """The trials table less what depends on the machine's speed: durations and wall times."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        del row["duration_s"], row["worker"]
        row["seeds"] = {k: v["solved_at"] for k, v in json.loads(row["seeds"]).items()}
    return rows


def test_the_90th_percentile_is_unsolved_only_where_an_unsolved_seed_enters_it():
    assert ablation.percentile_90(range(1, 11)) == pytest.approx(9.1)  # numpy's linear percentile
    assert ablation.percentile_90([1000] * 18 + [5000, np.inf]) == pytest.approx(1400)  # ranks 18 and 19 of 20
    assert ablation.percentile_90([1000] * 9 + [np.inf]) == np.inf
    assert ablation.percentile_90([np.inf] * 3) == np.inf


def test_a_seeds_return_curve_holds_each_evaluation_then_its_confirmed_mean_once_solved():
    solved = dict(solved_at=3000, confirm_mean=210.0, evals=[[1000, -50.0], [2000, 120.0], [3000, 230.0]])
    unsolved = dict(solved_at=None, confirm_mean=None, evals=[[1000, -80.0], [2000, 40.0]])
    late_start = dict(solved_at=None, confirm_mean=None, evals=[[2000, 5.0]])
    grid = np.array([1000, 1500, 2000, 3000, 4000])
    table = ablation.returns_by_step([solved, unsolved, late_start], grid)
    np.testing.assert_array_equal(table[0], [-50, -50, 120, 210, 210])
    np.testing.assert_array_equal(table[1], [-80, -80, 40, 40, 40])
    np.testing.assert_array_equal(table[2], [np.nan, np.nan, 5, 5, 5])


def test_the_early_returns_table_gives_each_rows_median_after_each_evaluation(tmp_path):
    (tmp_path / "judge").mkdir()
    curves = {"blog": [-100.0, 50.0, 100.0], "tuned": [20.0, 300.0, 480.0]}
    for name, means in curves.items():
        results = [
            dict(seed=s, solved_at=None, confirm_mean=None, unconfirmed=[], wall_s=1.0, env_steps=3000,
                 evals=[[1000 * (i + 1), m + s] for i, m in enumerate(means)])
            for s in range(3)
        ]  # fmt: skip
        ablation.row_path(tmp_path, name).write_text("".join(json.dumps(r) + "\n" for r in results))
    text = ablation.early_returns(tmp_path, ["blog", "tuned"], [0, 1, 2])
    blog, tuned = (line for line in text.splitlines() if line.startswith("| ") and "env steps |" not in line)
    assert "| -99 [-100, -98] | 51 [50, 52] | 101 [100, 102] |" in blog
    assert "| 21 [20, 22] | 301 [300, 302] | 481 [480, 482] |" in tuned
    assert ablation.early_returns(tmp_path, ["dueling"], [0, 1, 2]) == ""


def test_a_probe_judged_on_the_report_seeds_is_compared_with_sb3_as_well_as_with_the_preset(tmp_path):
    """On another env, each probe with results gets its own P(fewer steps) against SB3, as a preset would."""
    (tmp_path / "judge").mkdir()
    solved = {"tuned": [50_000, 60_000], "tuned-learning-starts-2000": [20_000, 30_000], "sb3-zoo": [40_000, 70_000]}
    for name, steps in solved.items():
        results = [
            dict(seed=s, solved_at=at, confirm_mean=250.0, unconfirmed=[], wall_s=1.0, env_steps=at, evals=[])
            for s, at in enumerate(steps)
        ]
        ablation.row_path(tmp_path, name).write_text("".join(json.dumps(r) + "\n" for r in results))
    rows = [line for line in ablation.comparisons(tmp_path, [0, 1], "LunarLander-v3").splitlines() if "| " in line]
    names = ablation.rows_for("LunarLander-v3")
    probe, preset, sb3 = (names[n][1] for n in ["tuned-learning-starts-2000", "tuned", "sb3-zoo"])
    assert f"| {probe} | {sb3} | 1.00 [1.00, 1.00] |" in rows  # both its seeds beat both of SB3's
    assert f"| {preset} | {sb3} | 0.50 [0.00, 1.00] |" in rows
    assert f"| {preset} | {probe} | 0.00 [0.00, 0.00] |" in rows
    assert not any(line.startswith(f"| {names['tuned-memory-50k'][1]} |") for line in rows)  # a probe with no results


def test_the_wall_ratio_compares_each_row_that_ran_beside_sb3(tmp_path):
    (tmp_path / "judge").mkdir()
    walls = {"tuned-averaged": [50.0, 70.0, 90.0], "sb3-zoo": [200.0, 300.0, 400.0]}
    for name, seconds in walls.items():
        results = [dict(seed=s, solved_at=None, wall_s=w) for s, w in enumerate(seconds)]
        ablation.row_path(tmp_path, name).write_text("".join(json.dumps(r) + "\n" for r in results))
    names = ablation.rows_for("LunarLander-v3")
    text = ablation.wall_ratio(tmp_path, [0, 1, 2], "tuned-averaged", env_id="LunarLander-v3")
    assert f"{names['tuned-averaged'][1]} over {names['sb3-zoo'][1]}: 0.23 [" in text  # 70 s / 300 s
    assert "210 s against 900 s" in text
    assert ablation.wall_ratio(tmp_path, [0, 1, 2], "tuned", env_id="LunarLander-v3") == ""  # no such row here


def test_the_tuned_preset_is_the_studys_best_trial():
    best = json.loads((ROOT / "bench" / "results" / "tune_tail" / "tune_best.json").read_text())["params"]
    preset = PRESETS["tuned"]
    for name, value in best.items():
        expected = None if name == "grad_clip" and not value else value
        assert preset.get(name) == expected, name


def test_an_ablation_rerun_skips_the_seeds_it_has(tmp_path, monkeypatch):
    calls = []

    def fake_judge(flags, seed, budget, env_id="CartPole-v1"):
        calls.append(seed)
        return dict(seed=seed, solved_at=None, confirm_mean=None, env_steps=budget, wall_s=0.0, evals=[])

    monkeypatch.setattr(ablation, "judge", fake_judge)
    ablation.run_rows(tmp_path, ["blog"], [0, 1], 1000)
    ablation.run_rows(tmp_path, ["blog"], [0, 1, 2], 1000)
    assert calls == [0, 1, 2]
    assert sorted(ablation.load(tmp_path, "blog")) == [0, 1, 2]


def test_a_result_of_the_earlier_rule_whose_pass_did_not_confirm_is_judged_again(tmp_path, monkeypatch):
    (tmp_path / "judge").mkdir()
    earlier = [dict(seed=0, solved_at=4000, confirm_mean=446.9), dict(seed=1, solved_at=3000, confirm_mean=499.0)]
    ablation.row_path(tmp_path, "blog").write_text("".join(json.dumps(r) + "\n" for r in earlier))
    assert sorted(ablation.load(tmp_path, "blog")) == [1]
    calls = []

    def fake_judge(flags, seed, budget, env_id="CartPole-v1"):
        calls.append(seed)
        return dict(seed=seed, solved_at=6000, confirm_mean=480.0, unconfirmed=[(4000, 490.0, 446.9)], wall_s=0.0)

    monkeypatch.setattr(ablation, "judge", fake_judge)
    ablation.run_rows(tmp_path, ["blog"], [0, 1], 1000)
    assert calls == [0] and ablation.load(tmp_path, "blog")[0]["solved_at"] == 6000


def test_seeds_judged_in_worker_processes_give_what_one_process_gives(tmp_path):
    rows, seeds = ["blog-shaped", "terminal-mask"], [0, 1]
    for jobs in (1, 2):
        ablation.run_rows(tmp_path / f"jobs{jobs}", rows, seeds, budget=3000, jobs=jobs)
    for name in rows:
        one, pool = (ablation.load(tmp_path / f"jobs{jobs}", name) for jobs in (1, 2))
        for results in (one, pool):
            for r in results.values():
                del r["wall_s"]
        assert one == pool and sorted(one) == seeds, name
    assert any(r["evals"] for r in one.values())


@pytest.mark.parametrize("name", [n for n, (flags, _) in ablation.ROWS.items() if flags is not None])
def test_every_ablation_row_is_valid_dqn_flags(name):
    from beyond.flags import parse_args

    parse_args([str(f) for f in judge.protocol_flags(ablation.ROWS[name][0], 0, 1000)])


def fake_pixel_result(out, variant, seed, test_mean):
    """A result.json as bench/pixel_protocol.py writes it, without the training."""
    run_dir = out / variant / f"seed{seed}"
    run_dir.mkdir(parents=True)
    result = dict(
        variant=variant,
        flags=[],
        seed=seed,
        budget=500_000,
        test_mean=test_mean,
        test_min=test_mean - 100,
        success=test_mean >= 475,
        test_wall_s=30.0,
        run_wall_s=600.0,
        env_steps=400_000,
        evals=[(20_000, 100.0), (40_000, test_mean)],
        confirmations=[],
        processor="a test CPU",
    )
    (run_dir / "result.json").write_text(json.dumps(result))


def test_a_pixel_protocol_rerun_skips_the_seeds_it_has(tmp_path, monkeypatch):
    import pixel_protocol

    fake_pixel_result(tmp_path, "track", 200, 480.0)
    asked = []
    monkeypatch.setattr(pixel_protocol, "in_pool", lambda work, tasks, jobs: asked.extend(tasks) or [])
    argv = ["pixel_protocol.py", "--variant", "track", "--seeds", "200-202", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    pixel_protocol.main()
    assert [seed for _, seed, _, _ in asked] == [201, 202]


def test_the_pixel_protocol_table_counts_successes_with_their_interval(tmp_path):
    import pixel_protocol

    for seed, mean in [(200, 480.0), (201, 300.0), (202, 500.0)]:
        fake_pixel_result(tmp_path, "track", seed, mean)
    table = pixel_protocol.table(tmp_path, {"protocol": pixel_protocol.PROTOCOL_SEEDS})
    (row,) = [line for line in table.splitlines() if line.startswith("| track")]
    low, high = pixel_protocol.success_interval(2, 3)
    assert f"| 2/3 ({low:.2f}, {high:.2f}) |" in row and 0.09 < low < 0.1 and 0.99 < high < 1
    assert "| 480.0 [300.0, 500.0] |" in row and "201: 300.0 (400,000, 630)" in row and "a test CPU" in table


def test_the_pixel_test_episodes_are_apart_from_every_other_episode_of_the_run():
    import pixel_protocol

    from beyond.evaluation import confirm_seed, eval_seed

    for seed in [*pixel_protocol.SCREEN_SEEDS, *pixel_protocol.PROTOCOL_SEEDS, *pixel_protocol.CONFIRM_SEEDS]:
        test = set(range(pixel_protocol.test_seed(seed), pixel_protocol.test_seed(seed) + pixel_protocol.TEST_EPISODES))
        used = set(range(eval_seed(seed), eval_seed(seed) + 1000))  # periodic, then the final evaluation
        for attempt in range(100):
            used |= set(range(confirm_seed(seed, attempt), confirm_seed(seed, attempt) + 100))
        assert not test & used


def test_every_pixel_variant_sets_every_lever_to_its_value():
    import pixel_protocol

    from beyond.flags import parse_args

    for variant, overrides in pixel_protocol.VARIANTS.items():
        args = parse_args(["--preset", "pixels", *pixel_protocol.variant_flags(variant), *pixel_protocol.RUN_FLAGS])
        assert args.pixels and args.confirm_episodes == 100 and args.keep_best
        for flag, value in {**pixel_protocol.LEVERS, **overrides}.items():
            assert getattr(args, flag[2:].replace("-", "_")) == value, (variant, flag)


def test_the_pixel_preset_is_the_protocols_chosen_variant():
    import pixel_protocol

    from beyond.flags import parse_args

    chosen = [*pixel_protocol.variant_flags(pixel_protocol.PRESET_VARIANT), *pixel_protocol.RUN_FLAGS]
    budget = ["--max-env-steps", str(pixel_protocol.BUDGET)]
    assert vars(parse_args(["--pixels"])) == vars(parse_args(["--preset", "pixels", *chosen, *budget]))


class FixedEvaluations(judge.JudgedEvaluator):
    """The judge's evaluator, its evaluations scoring what the test says, without playing."""

    def __init__(self, means, task=judge.CARTPOLE):
        args = judge.parse_args([str(f) for f in judge.protocol_flags([], 0, 5000, task=task)])
        super().__init__(judge.dqn.DQN(4, 2), args, task=task)
        self.means = iter(means)

    def evaluate(self, seed, episodes=None):
        mean = next(self.means)
        return dict(mean=mean, std=0.0, min=mean)


def test_the_judge_passes_a_mean_exactly_at_the_threshold(monkeypatch):
    monkeypatch.setattr(judge, "confirm", lambda agent, seed, attempt, task: task.threshold)
    judged = FixedEvaluations([judge.SOLVED - 0.01, judge.SOLVED])
    assert not judged.run_eval(1000) and judged.passed is None
    assert judged.run_eval(2000) and judged.passed[0]["env_steps"] == 2000


def test_each_confirmation_the_judge_asks_for_is_a_new_attempt(monkeypatch):
    attempts = []
    monkeypatch.setattr(judge, "confirm", lambda agent, seed, attempt, task: attempts.append(attempt) or 0.0)
    judged = FixedEvaluations([500.0, 500.0, 500.0])
    for env_steps in (1000, 2000, 3000):
        judged.run_eval(env_steps)
    assert attempts == [0, 1, 2] and len(judged.unconfirmed) == 3 and judged.passed is None


def test_a_pass_holds_only_when_its_fresh_episodes_reach_the_threshold_too():
    from beyond.evaluation import Confirmation

    attempts = []
    passes = Confirmation(10.0, lambda attempt: attempts.append(attempt) or [9.0, 10.0][attempt])
    assert passes.holds(100, 9.99) is None and attempts == []  # no pass: no fresh episodes played
    assert passes.holds(200, 12.0) is None and passes.unconfirmed == [(200, 12.0, 9.0)]
    assert passes.holds(300, 10.0) == 10.0 and attempts == [0, 1]  # at the threshold is a pass
    assert passes.unconfirmed == [(200, 12.0, 9.0)]


def test_one_seed_gives_its_value_without_an_interval():
    summary = intervals.summarize([4000])
    assert summary["median"] == summary["iqm"] == 4000
    assert intervals.fmt_summary(summary) == ("4,000", "4,000")
    p, (low, high) = intervals.probability_of_improvement([1000], [2000])
    assert p == 1.0 and np.isnan(low) and np.isnan(high)


def test_curve_pruning_stops_a_trial_whose_first_seed_trails_the_others_at_the_same_env_step():
    import optuna

    sys.path.insert(0, str(ROOT / "bench"))
    import tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=tune.LatestMedianPruner(n_startup_trials=2))
    for mean in (100.0, 120.0):  # two earlier trials, each evaluated at 10,000 env steps
        trial = study.ask()
        tune.curve_pruning(trial)(10_000, mean)
        study.tell(trial, 1.0)
    ahead, behind = study.ask(), study.ask()
    tune.curve_pruning(ahead)(10_000, 150.0)  # better than both: goes on
    with pytest.raises(optuna.TrialPruned):
        tune.curve_pruning(behind)(10_000, -150.0)
    assert list(behind.study.trials[-1].intermediate_values) == [tune.CURVE_STEPS + 10_000]


def seeds_run(monkeypatch, solved_at, pruner, warmup=1):
    """A trial of tune.objective on seeds that solve at solved_at, after two finished trials at 50,000 on every
    seed: (how many seeds it ran, its value or None if pruned)."""
    import optuna
    import tune

    monkeypatch.setattr(
        tune, "judge", lambda flags, seed, budget, env_id, on_eval: dict(solved_at=solved_at[seed], wall_s=1)
    )
    monkeypatch.setattr(tune, "suggest", lambda trial, first: dict(lr=0.001))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=pruner)
    for _ in range(2):
        trial = study.ask()
        for i in range(len(solved_at)):
            trial.report(50_000, i)
        study.tell(trial, 50_000)
    trial = study.ask()
    try:
        value = tune.objective(trial, list(solved_at), 200_000, 100, "mean", "LunarLander-v3", warmup=warmup)
    except optuna.TrialPruned:
        value = None
    return len([k for k in trial.user_attrs if k.startswith("seed")]), value


def test_a_trial_is_not_stopped_for_trailing_before_it_has_finished_its_warmup_seeds(monkeypatch):
    import tune

    solved_at = {1000: 90_000, 1001: 10_000, 1002: 20_000, 1003: 20_000}  # one slow seed first, then fast ones
    pruner = tune.LatestMedianPruner(n_startup_trials=2)
    assert seeds_run(monkeypatch, solved_at, pruner, warmup=1) == (1, None)  # stopped on its slow first seed
    # the second seed brings its mean level: it goes on, and finishes ahead
    assert seeds_run(monkeypatch, solved_at, pruner, warmup=2) == (4, 35_000)


def test_a_trial_fast_on_its_first_seed_is_stopped_once_its_running_mean_falls_behind(monkeypatch):
    import optuna
    import tune

    solved_at = {1000: 10_000, 1001: 90_000, 1002: 90_000, 1003: 10_000}  # a lucky first seed, then slow ones
    # running means 10,000, 50,000 (level: goes on), 63,333 (behind): stopped after its third seed
    assert seeds_run(monkeypatch, solved_at, tune.LatestMedianPruner(n_startup_trials=2)) == (3, None)
    # MedianPruner weighs the best report so far (10,000) and lets it run to the end
    median_pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    assert seeds_run(monkeypatch, solved_at, median_pruner) == (4, 50_000)


def test_the_pruner_waits_for_its_startup_trials_and_a_report():
    import optuna
    import tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(pruner=tune.LatestMedianPruner(n_startup_trials=2))
    finished = study.ask()
    finished.report(50_000, 0)
    study.tell(finished, 50_000)
    trial = study.ask()
    assert not trial.should_prune()  # nothing reported yet
    trial.report(90_000, 0)
    assert not trial.should_prune()  # one finished trial of the two it waits for
    second = study.ask()
    second.report(50_000, 0)
    study.tell(second, 50_000)
    assert trial.should_prune()
    trial.report(10_000, 1)
    assert not trial.should_prune()  # no finished trial reported at this seed


def study_args(storage, env_id, enqueue, start_from_preset=False):
    """tune.py's arguments for open_study: the study at storage, on env_id, with these --enqueue changes."""
    import argparse

    import tune

    changes = [tune.trial_changes(text) for text in enqueue]
    return argparse.Namespace(
        env=env_id,
        storage=storage,
        heartbeat=30,
        study_name="tuned",
        sampler_seed=0,
        enqueue=changes,
        start_from_best=False,
        start_from_preset=start_from_preset,
    )


def test_a_worker_runs_every_queued_trial_that_fits_in_n_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [sys.executable, "tune.py", "--seeds", "1000", "--budget", "1500", "--storage", storage]
    queued = ["--enqueue", "n_step=3", "--enqueue", "batch_size=128", "--enqueue", "hidden=64"]
    out = subprocess.run(
        [*command, *queued, "--n-trials", "3", "--out", str(tmp_path)], cwd=ROOT / "bench", text=True, timeout=300
    )
    assert out.returncode == 0
    states = [row["state"] for row in csv.DictReader((tmp_path / "tune_trials.csv").open())]
    assert all(state in ("COMPLETE", "PRUNED") for state in states[:3])  # the first trial and two queued ones ran
    assert states[3:] == ["WAITING"]  # the third queued one did not fit: left for a later run


def test_the_tuner_tries_an_enqueued_change_of_the_first_trial_next_and_once(tmp_path):
    import argparse

    import tune

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = study_args(storage, "MountainCar-v0", ["n_step=3,double=true"])
    for _ in range(2):  # a resumed study with the same --enqueue queues nothing more
        study = tune.open_study(args)
    first, second = (study.ask() for _ in range(2))
    start = tune.first_trial(args)
    assert tune.suggest(first, start) == start
    assert tune.suggest(second, start) == {**start, "n_step": 3, "double": True}
    for bad in ["n_step=4", "n_step=true", "lr=1", "nothing=1", "n_step"]:
        with pytest.raises(argparse.ArgumentTypeError):
            tune.trial_changes(bad)
    report = [sys.executable, "tune.py", "--env", "MountainCar-v0", "--storage", storage, "--out", str(tmp_path)]
    subprocess.run([*report, "--report"], cwd=ROOT / "bench", check=True, timeout=120)  # runs no trial
    rows = list(csv.DictReader((tmp_path / "tune_trials.csv").open()))
    assert [row["state"] for row in rows] == ["RUNNING", "RUNNING"]  # the two asked above, nothing more
    assert not (tmp_path / "tune_best.json").exists()  # no trial is complete


def test_a_study_from_the_preset_can_try_a_falling_learning_rate(tmp_path):
    import argparse

    import tune

    from beyond.flags import parse_args

    storage = f"sqlite:///{tmp_path / 'study.db'}"  # Acrobot's preset has no schedule
    args = study_args(storage, "Acrobot-v1", ["lr=0.0028,lr_steps=100000,lr_end=0.0001"], start_from_preset=True)
    study = tune.open_study(args)
    start = tune.first_trial(args)
    first, falling = (tune.suggest(study.ask(), start) for _ in range(2))
    assert first == start and "lr_end" not in first and "--lr-steps" not in tune.as_flags(first)
    assert falling == {**start, "lr": 0.0028, "lr_steps": 100_000, "lr_end": 0.0001}
    run = parse_args(["--preset", "tuned", "--env", "Acrobot-v1", *tune.as_flags(falling)])
    assert (run.lr, run.lr_steps, run.lr_end) == (0.0028, 100_000, 0.0001)
    for bad in ["lr_steps=30000", "lr_end=1", "lr_end=true"]:
        with pytest.raises(argparse.ArgumentTypeError):
            tune.trial_changes(bad)


def test_a_study_from_the_preset_can_try_prioritized_replay_a_dueling_head_or_an_averaged_policy(tmp_path):
    import argparse

    import tune

    from beyond.flags import parse_args

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    enqueue = ["prioritized=true,per_alpha=0.4", "dueling=true", "averaged_policy=0.001"]
    args = study_args(storage, "LunarLander-v3", enqueue, start_from_preset=True)
    study = tune.open_study(args)
    start = tune.first_trial(args)
    first, prioritized, dueling, averaged, *drawn = (tune.suggest(study.ask(), start) for _ in range(24))
    assert not first["prioritized"] and "per_alpha" not in first and not first["dueling"]
    assert first["averaged_policy"] == 0.0003  # the preset's own average
    assert prioritized == {**first, "prioritized": True, "per_alpha": 0.4}
    assert dueling == {**first, "dueling": True}
    assert averaged == {**first, "averaged_policy": 0.001}
    assert all(not values["dueling"] for values in drawn if values["hidden_layers"] == 2)  # as the studies drew
    assert all("averaged_policy" in values for values in drawn)  # the first trial averages: each trial says how much
    assert {values["hidden_layers"] for values in drawn} == {1, 2}  # both occur, so the check can fail
    run = parse_args(["--preset", "tuned", "--env", "LunarLander-v3", *tune.as_flags(prioritized)])
    assert (run.prioritized, run.per_alpha) == (True, 0.4)
    run = parse_args(["--preset", "tuned", "--env", "LunarLander-v3", *tune.as_flags(dueling)])
    assert (run.dueling, run.hidden_layers) == (True, 2)
    run = parse_args(["--preset", "tuned", "--env", "LunarLander-v3", *tune.as_flags(averaged)])
    assert run.averaged_policy == 0.001
    from_zoo = study_args(f"sqlite:///{tmp_path / 'zoo.db'}", "LunarLander-v3", [])
    zoo_study, zoo_start = tune.open_study(from_zoo), tune.first_trial(from_zoo)
    zoo_trials = [tune.suggest(zoo_study.ask(), zoo_start) for _ in range(8)]
    assert not any("averaged_policy" in values for values in zoo_trials)  # only where a trial or --enqueue sets it
    for bad in ["per_alpha=0.5", "per_alpha=1", "per_alpha=true", "averaged_policy=0.5", "averaged_policy=true"]:
        with pytest.raises(argparse.ArgumentTypeError):
            tune.trial_changes(bad)


def test_dropping_the_queue_runs_the_new_enqueued_values_next(tmp_path):
    import tune
    from optuna.trial import TrialState

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    args = study_args(storage, "LunarLander-v3", ["n_step=3", "batch_size=128"], start_from_preset=True)
    assert tune.drop_waiting(args) == 0  # no study yet
    study = tune.open_study(args)
    running = study.ask()  # the first trial, started
    assert tune.drop_waiting(args) == 2  # the two queued ones; the running one stays
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.RUNNING, TrialState.FAIL, TrialState.FAIL]
    again = study_args(storage, "LunarLander-v3", ["dueling=true", "n_step=3"], start_from_preset=True)
    study = tune.open_study(again)  # a dropped trial's values may be queued again
    start = tune.study_start(study, again)
    assert [tune.suggest(study.ask(), start) for _ in range(2)] == [
        {**tune.suggest(running, start), "dueling": True},
        {**tune.suggest(running, start), "n_step": 3},
    ]
    assert tune.drop_waiting(again) == 0


def test_a_resumed_study_starts_where_it_began_though_the_preset_has_changed_since(tmp_path, monkeypatch):
    import optuna
    import tune

    from beyond.tasks import TASKS

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    tuned = TASKS["LunarLander-v3"].tuned
    before = {k: v for k, v in tuned.items() if k not in ("lr_steps", "lr_end")}  # a preset without a schedule
    begun = optuna.create_study(storage=storage, study_name="tuned")
    begun.enqueue_trial(before)
    begun.enqueue_trial({**before, "n_step": 3})  # queued before the schedule existed
    args = study_args(storage, "LunarLander-v3", ["n_step=3", "lr_steps=50000,lr_end=0.0001"], start_from_preset=True)
    monkeypatch.setitem(tuned, "lr", 0.005)  # the preset moved on
    study = tune.open_study(args)
    start = tune.study_start(study, args)
    assert start == {"lr_steps": 0, **before} and start != tune.first_trial(args)
    queued = [t.system_attrs["fixed_params"] for t in study.get_trials(deepcopy=False)]
    assert queued[2:] == [{**before, "lr_steps": 50_000, "lr_end": 0.0001}]  # n_step=3 was there already
    assert len(tune.open_study(args).get_trials(deepcopy=False)) == 3  # resumed again: nothing more


def test_a_study_started_from_the_best_begins_at_its_envs_first_studys_best(monkeypatch, capsys):
    """--start-from-best on any env: the first trial is the best of that env's default study, not rl-zoo's."""
    import argparse
    import json

    import tune

    from beyond.tasks import RL_ZOO_START, TASKS

    for env_id in ["CartPole-v1", "LunarLander-v3"]:
        best = json.loads((tune.default_out(env_id) / "tune_best.json").read_text())["params"]
        assert tune.first_trial(argparse.Namespace(env=env_id, start_from_best=True, start_from_preset=False)) == best
    lunar = tune.first_trial(argparse.Namespace(env="LunarLander-v3", start_from_best=True, start_from_preset=False))
    assert lunar != RL_ZOO_START["LunarLander-v3"]
    # the third study's best (the first's, learning later, its learning rate falling), then the fourth's average
    later = dict(lr=0.0028, learning_starts=2000, lr_steps=100_000, lr_end=0.0001, averaged_policy=0.0003)
    assert {**lunar, **later} == TASKS["LunarLander-v3"].tuned
    assert (
        tune.first_trial(argparse.Namespace(env="LunarLander-v3", start_from_best=False, start_from_preset=False))
        == RL_ZOO_START["LunarLander-v3"]
    )
    assert (
        tune.first_trial(argparse.Namespace(env="CartPole-v1", start_from_best=False, start_from_preset=False))
        == tune.PREVIOUS_PRESET
    )
    for env_id in ["CartPole-v1", "LunarLander-v3"]:  # --start-from-preset: the preset a new search means to beat
        preset = tune.first_trial(argparse.Namespace(env=env_id, start_from_best=False, start_from_preset=True))
        assert preset == {"lr_steps": 0, **TASKS[env_id].tuned} and preset is not TASKS[env_id].tuned  # lr_steps 0:
        # its learning rate as the preset has it, falling only if the preset's does
    monkeypatch.setattr(sys, "argv", ["tune.py", "--start-from-best", "--start-from-preset", "--report"])
    with pytest.raises(SystemExit) as stopped:
        tune.main()
    assert stopped.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["tune.py", "--warmup-seeds", "0", "--report"])
    with pytest.raises(SystemExit) as stopped:
        tune.main()
    assert stopped.value.code == 2 and "--warmup-seeds must be at least 1, got 0" in capsys.readouterr().err


def test_the_sb3_anchor_is_evaluated_as_dqn_pys_agents_are():
    """SB3's agent goes through the same evaluate() and confirmation as ours, at the task's cadence."""
    pytest.importorskip("stable_baselines3")
    from sb3_anchor import judge_sb3

    from beyond.tasks import TASKS

    task = TASKS["Acrobot-v1"]
    result = judge_sb3(0, "Acrobot-v1", budget=task.eval_every)
    assert result["env_steps"] == task.eval_every and [steps for steps, _ in result["evals"]] == [task.eval_every]
    assert -500 <= result["evals"][0][1] <= 0 and result["solved_at"] is None


def test_an_average_that_moves_all_the_way_plays_as_eval_net_under_the_judge():
    import averaged_policy

    result = averaged_policy.judge_seed((["--preset", "tuned"], 0, 4000, "CartPole-v1", [1.0, 0.001]))
    live = [tuple(e[:2]) for e in result["evals"]]
    whole, slow = result["averaged"]["1.0"], result["averaged"]["0.001"]
    assert len(live) == 3 and whole["evals"] == live and whole["solved_at"] == result["solved_at"]
    assert slow["evals"] != live  # an average that lags eval_net plays otherwise, so the check can fail


def test_the_average_probe_refuses_flags_whose_greedy_policy_is_already_an_average(tmp_path):
    out = tmp_path / "averaged.jsonl"
    probe = [sys.executable, "bench/averaged_policy.py", "--env", "LunarLander-v3", "--seeds", "0", "--out", str(out)]
    refused = subprocess.run([*probe, "--", "--preset", "tuned"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "add --averaged-policy 0" in refused.stderr.splitlines()[-1]
    assert "Traceback" not in refused.stderr and not out.exists()
    import averaged_policy

    from beyond.flags import parse_args

    assert not parse_args([*averaged_policy.DEFAULT_FLAGS, "--env", "LunarLander-v3"]).averaged_policy  # eval_net's


def test_episode_ends_tells_how_lunarlander_episodes_end(tmp_path):
    pytest.importorskip("Box2D", reason="gymnasium[box2d] (requirements-dev.txt)")
    lander = ["--preset", "tuned", "--env", "LunarLander-v3", "--max-env-steps", "300", "--seed", "0"]
    quiet = ["--watch", "0", "--snapshots", "0", "--quiet", "--no-show", "--runs-dir", str(tmp_path)]
    subprocess.run([sys.executable, "dqn.py", *lander, *quiet, "--run-name", "l"], cwd=ROOT, check=True, timeout=300)
    ends = subprocess.run(
        [sys.executable, "bench/episode_ends.py", str(tmp_path / "l" / "model.pt"), "--episodes", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ends.returncode == 0, ends.stderr[-2000:]
    lines = ends.stdout.splitlines()
    named = ("landed", "crashed", "flew off the screen", "time limit")
    assert [line.split(":")[0] for line in lines[:4]] == [f"episode {i}" for i in range(4)]
    assert all(line.endswith(named) and "legs down" in line for line in lines[:4])
    counts = dict(part.rsplit(": ", 1) for part in lines[4].removeprefix("ENDS ").split(", "))
    assert set(counts) <= set(named) and sum(map(int, counts.values())) == 4
