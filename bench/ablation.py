"""The ablation in docs/going-further.md, every row judged by bench/judge.py on the same seeds.

Rows: the blog's defaults (on its own shaped task, and on the standard task); each known
fix alone on the standard task, the earlier ones and the three extensions (these also on
top of the terminal mask, which the standard task's reward needs); the tuned
preset; the preset without each of its parts; and Stable-Baselines3's DQN with the
rl-zoo's values (bench/sb3_anchor.py). One seed per core (--jobs), each in a fresh process.

Resumable: each seed's result is appended to bench/results/judge/<row>.jsonl as soon as
it is done, and a rerun skips the seeds a row already has (so after a change to the code or
to the preset, delete the files of the rows it affects).

    python bench/ablation.py                        # every row, report seeds 0-29 (about 2 hours on 2 cores)
    python bench/ablation.py --rows tuned sb3-zoo --jobs 1       # only these, one seed at a time
    python bench/ablation.py --table-only           # the table and figure from the results so far
    python bench/ablation.py --rows tuned sb3-zoo --out bench/results/wall --wall-ratio   # wall time, alone
    python bench/ablation.py --env Acrobot-v1 --rows tuned sb3-zoo --seeds 3000-3009 --side-by-side --wall-ratio

Writes bench/results/ablation.md and ablation.png (for other --seeds than the report
seeds 0-29: ablation_seedsA-B.md and .png).
"""

import argparse
import json
import os
from pathlib import Path

import intervals
import numpy as np
from judge import REPORT_SEEDS, describe, in_pool, is_current, judge, seed_list

from beyond.flags import preset_defaults
from beyond.tasks import TASKS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
EPSILON_SCHEDULE = ["--epsilon-start", "0", "--epsilon-end", "0.99", "--epsilon-steps", "10000"]
FIXED_ROWS = {  # name: (dqn.py flags, on top of the standard task unless they change it; what the row shows)
    "blog-shaped": (["--env", "CartPole-v0", "--reward", "shaped"], "the blog's own task: unwrapped v0, shaped reward"),
    "blog": ([], "the blog's defaults on the standard task"),
    "terminal-mask": (["--terminal-mask"], "+ no bootstrap from terminated states"),
    "double": (["--double"], "+ Double DQN target"),
    "huber": (["--huber"], "+ Huber loss"),
    "grad-clip": (["--grad-clip", "10"], "+ gradient norm clipped at 10"),
    "epsilon-schedule": (EPSILON_SCHEDULE, "+ greedy probability 0 → 0.99 over 10k steps"),
    "n-step": (["--n-step", "3"], "+ 3-step returns"),
    "dueling": (["--dueling"], "+ dueling head"),
    "prioritized": (["--prioritized"], "+ prioritized replay"),
    "terminal-mask-n-step": (["--terminal-mask", "--n-step", "3"], "+ terminal mask and 3-step returns"),
    "terminal-mask-dueling": (["--terminal-mask", "--dueling"], "+ terminal mask and dueling head"),
    "terminal-mask-prioritized": (["--terminal-mask", "--prioritized"], "+ terminal mask and prioritized replay"),
    "tuned": (["--preset", "tuned"], "`--preset tuned`"),
}
SB3_ROW = (None, "Stable-Baselines3 DQN, rl-zoo's CartPole-v1 values")
PARTS = {  # a part of the preset: (its value when off, what turns it off, what it is)
    "terminal_mask": (False, ["--no-terminal-mask"], "the terminal mask"),
    "double": (False, ["--no-double"], "Double DQN"),
    "huber": (False, ["--no-huber"], "the Huber loss"),
    "grad_clip": (None, ["--grad-clip", "0"], "gradient clipping"),
    "n_step": (1, ["--n-step", "1"], "n-step returns"),
    "dueling": (False, ["--no-dueling"], "the dueling head"),
    "prioritized": (False, ["--no-prioritized"], "prioritized replay"),
    "replay_ratio": (1, ["--replay-ratio", "1"], "the second learn step per env step"),
    "hidden_layers": (1, ["--hidden-layers", "1"], "the second hidden layer"),
}


def without_each_part(env_id="CartPole-v1"):
    """Rows for the env's tuned preset without each part it has on."""
    rows, preset = {}, preset_defaults("tuned", env_id)
    for name, (off, flags, what) in PARTS.items():
        if preset.get(name, off) != off:
            rows[f"tuned-no-{name.replace('_', '-')}"] = (["--preset", "tuned", *flags], f"preset without {what}")
    return rows


ROWS = {**FIXED_ROWS, **without_each_part(), "sb3-zoo": SB3_ROW}
PROBES = {  # an env's preset plus one change: probed before a study, or a study's best before it may be the preset
    "MountainCar-v0": {
        "tuned-n-step-10": (["--preset", "tuned", "--n-step", "10"], "preset with 10-step returns"),
        "tuned-lr-1e-3": (["--preset", "tuned", "--lr", "0.001"], "preset with lr 0.001"),
        "tuned-memory-50k": (["--preset", "tuned", "--memory-capacity", "50000"], "preset with 50,000 rows"),
        "tuned-epsilon-60k": (["--preset", "tuned", "--epsilon-steps", "60000"], "preset exploring over 60k steps"),
    },
    "LunarLander-v3": {
        "tuned-hidden-layers-2": (["--preset", "tuned", "--hidden-layers", "2"], "preset with SB3's two hidden layers"),
        # measured on the first preset (results/LunarLander-v3/first-study/probes/), which learned sooner than SB3
        # but swung near the threshold; the second study made lr 1e-3 the preset
        "tuned-memory-50k": (["--preset", "tuned", "--memory-capacity", "50000"], "preset with SB3's 50,000 rows"),
        "tuned-lr-1e-3": (["--preset", "tuned", "--lr", "0.001"], "preset with lr 0.001"),
        # the third study's best (results/tune_LunarLander-v3/mean/), on the report seeds: no sooner, so not the preset
        "tuned-learning-starts-2000": (
            ["--preset", "tuned", "--learning-starts", "2000"],
            "preset learning from 2,000 env steps",
        ),
        # the third study's best once it could lower the learning rate as it goes (trial 23), on the report seeds
        # before it became the preset (results/LunarLander-v3/probe-lr-falling/): now the preset itself
        "tuned-lr-falling": (
            ["--preset", "tuned", "--lr", "0.0028", "--lr-steps", "100000", "--lr-end", "0.0001"]
            + ["--learning-starts", "2000"],
            "preset, lr 2.8e-3 falling to 1e-4 over 100k env steps, learning from 2,000",
        ),
        # the best of the preset's changes on fresh tuning seeds 1010-1029 (results/tune_LunarLander-v3/fresh-seeds/)
        "tuned-dueling": (["--preset", "tuned", "--dueling"], "preset with a dueling head on its two layers"),
        # the greedy policy a running average of the weights (results/tune_LunarLander-v3/fresh-seeds/, trial 13),
        # judged on held-out and report seeds before it became the preset: now the preset itself
        "tuned-averaged": (
            ["--preset", "tuned", "--averaged-policy", "0.0003"],
            "preset whose greedy policy averages its weights (0.0003 a learn step)",
        ),
    },
}
PROFILE_ROWS = ["blog-shaped", "blog", "terminal-mask", "terminal-mask-n-step", "tuned", "sb3-zoo"]


def rows_for(env_id):
    """The rows on env_id: CartPole's all; elsewhere the tuned preset, it without each part, its probes, and SB3."""
    if env_id == "CartPole-v1":
        return ROWS
    sb3 = (None, f"Stable-Baselines3 DQN, rl-zoo's {env_id} values")
    return {"tuned": FIXED_ROWS["tuned"], **without_each_part(env_id), **PROBES.get(env_id, {}), "sb3-zoo": sb3}


def results_dir(env_id):
    """Where an env's rows go: bench/results for CartPole, bench/results/<env> for the others."""
    return RESULTS if env_id == "CartPole-v1" else RESULTS / env_id


def row_path(out, name):
    return out / "judge" / f"{name}.jsonl"


def load(out, name, env_id="CartPole-v1"):
    """The seeds a row has so far, {seed: result}; a later line for a seed replaces an earlier one."""
    path = row_path(out, name)
    if not path.exists():
        return {}
    task = TASKS[env_id]
    return {r["seed"]: r for r in map(json.loads, path.read_text().splitlines()) if r and is_current(r, task)}


def seed_results(out, name, seeds, env_id="CartPole-v1"):
    """A row's results on these seeds, in seed order."""
    return [r for s, r in sorted(load(out, name, env_id).items()) if s in seeds]


def judge_row_seed(task):
    """One (row, seed, budget, env), judged: (row, result). The SB3 row runs Stable-Baselines3 instead."""
    name, seed, budget, env_id = task
    flags = rows_for(env_id)[name][0]
    if flags is None:
        from sb3_anchor import judge_sb3

        return name, judge_sb3(seed, env_id, budget)
    return name, judge(flags, seed, budget, env_id=env_id)


def side_by_side(tasks):
    """Each seed's rows at the same time, one process each, and the next seed only when all have finished."""
    for seed in dict.fromkeys(task[1] for task in tasks):
        group = [task for task in tasks if task[1] == seed]
        yield from in_pool(judge_row_seed, group, len(group))


def run_rows(out, names, seeds, budget, jobs=1, env_id="CartPole-v1", paired=False):
    """Judge each row's missing seeds, jobs at a time (seed by seed across the rows); append each result when done.

    paired: a seed's rows run side by side instead (see side_by_side), so that their wall times compare.
    """
    tasks = [(name, seed, budget, env_id) for seed in seeds for name in names if seed not in load(out, name, env_id)]
    (out / "judge").mkdir(parents=True, exist_ok=True)
    if paired:
        results = side_by_side(tasks)
    else:
        results = map(judge_row_seed, tasks) if jobs == 1 else in_pool(judge_row_seed, tasks, jobs)
    for name, result in results:
        print(f"{name}: {describe(result)}", flush=True)
        with open(row_path(out, name), "a") as f:
            f.write(json.dumps(result) + "\n")


def steps_to_solve(results):
    """Env steps to solve per seed, inf where unsolved."""
    return [r["solved_at"] if r["solved_at"] is not None else np.inf for r in results]


def percentile_90(steps):
    """The 90th percentile of env steps to solve (linear, as the tuner's); inf where an unsolved seed enters it."""
    finite_stand_in = np.nan_to_num(np.asarray(steps, float), posinf=1e18)  # interpolating with inf gives nan
    value = float(np.percentile(finite_stand_in, 90))
    return np.inf if value > max((x for x in steps if np.isfinite(x)), default=0) else value


def table(out, names, seeds, budget, env_id="CartPole-v1"):
    task, rows = TASKS[env_id], rows_for(env_id)
    env_flag = "" if env_id == "CartPole-v1" else f" --env {env_id}"
    sb3_budget = " (the SB3 row: its 50,000)" if env_id == "CartPole-v1" else ""
    lines = [
        f"Every row: `python bench/ablation.py{env_flag} --rows ROW` — seeds {seeds[0]}–{seeds[-1]}, a greedy "
        f"evaluation ({task.eval_episodes} episodes of {env_id}) every {task.eval_every:,} env steps, solved at the "
        f"first mean ≥ {task.threshold:g} within {budget:,} env steps{sb3_budget} whose agent also averages "
        f"≥ {task.threshold:g} on {task.confirm_episodes} fresh episodes; a pass that does not confirm is counted, "
        "and training goes on. "
        "Medians and IQMs count an unsolved seed as the worst; brackets are 95% bootstrap intervals.",
        "",
        "| configuration | flags | solved | env steps to solve: median [95% CI] | IQM [95% CI] | 90th percentile | "
        "passes not confirmed: seeds (passes) | wall s per seed (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in names:
        results = seed_results(out, name, seeds, env_id)
        if not results:
            continue
        steps = steps_to_solve(results)
        summary = intervals.summarize(steps)
        median, iqm = intervals.fmt_summary(summary, budget)
        solved = [r for r in results if r["solved_at"] is not None]
        misses = [len(r.get("unconfirmed", [])) for r in results]  # a result of the earlier rule that holds had none
        confirm = f"{sum(m > 0 for m in misses)} ({sum(misses)})"
        flags = "rl-zoo values" if rows[name][0] is None else " ".join(rows[name][0]) or "(none)"
        lines.append(
            f"| {rows[name][1]} | `{flags}` | {len(solved)}/{len(results)} | {median} | {iqm} | "
            f"{intervals.fmt(percentile_90(steps), budget)} | {confirm} | "
            f"{np.median([r['wall_s'] for r in results]):.1f} |"
        )
    return "\n".join(lines) + "\n"


COMPARISONS = [  # (row, against): how likely a seed of row solves sooner than a seed of against
    ("tuned", "sb3-zoo"),
    *(("tuned", name) for name in ROWS if name.startswith("tuned-no-")),
    ("terminal-mask-n-step", "terminal-mask"),
    ("terminal-mask-dueling", "terminal-mask"),
    ("terminal-mask-prioritized", "terminal-mask"),
]


def comparisons(out, seeds, env_id="CartPole-v1"):
    """The probability of improvement of each pair in COMPARISONS, as a markdown table."""
    lines = [
        "",
        "Probability that a seed of the first row solves in fewer env steps than a seed of the second "
        "(ties count half; 0.5 is no difference), with a 95% bootstrap interval:",
        "",
        "| row | against | P(fewer steps) [95% CI] |",
        "|---|---|---|",
    ]
    names = rows_for(env_id)
    probes_against_sb3 = [(n, "sb3-zoo") for n in PROBES.get(env_id, {})]  # would a probe beat SB3 as the preset?
    pairs = (
        COMPARISONS if env_id == "CartPole-v1" else [("tuned", n) for n in names if n != "tuned"] + probes_against_sb3
    )
    for name, against in pairs:
        rows = [seed_results(out, n, seeds, env_id) for n in (name, against)]
        if all(rows):
            p, (low, high) = intervals.probability_of_improvement(*map(steps_to_solve, rows))
            interval = "" if np.isnan(low) else f" [{low:.2f}, {high:.2f}]"
            lines.append(f"| {names[name][1]} | {names[against][1]} | {p:.2f}{interval} |")
    return "\n".join(lines) + "\n" if len(lines) > 5 else ""  # no pair has both rows: no table


def wall_ratio(out, seeds, name="tuned", against="sb3-zoo", env_id="CartPole-v1"):
    """A sentence on the ratio of the two rows' median wall time per seed, or "" without both rows."""
    rows = [[r["wall_s"] for r in seed_results(out, n, seeds, env_id)] for n in (name, against)]
    if not all(rows):
        return ""
    ratio, (low, high) = intervals.ratio_of_medians(*rows)
    names = rows_for(env_id)
    interval = "one seed, no interval" if np.isnan(low) else f"[{low:.2f}, {high:.2f}] (95% bootstrap interval)"
    return (
        f"\nMedian wall time per seed, {names[name][1]} over {names[against][1]}: {ratio:.2f} {interval}"
        f"; all their seeds together: {sum(rows[0]):,.0f} s against {sum(rows[1]):,.0f} s. "
        "Wall times compare only between rows that ran together.\n"
    )


def returns_by_step(results, grid):
    """Each seed's greedy return at each grid step: its evaluation there, its confirmed mean once it has
    solved (a learner's run stops there), and its last evaluation after a run that ended unsolved."""
    table = np.empty((len(results), len(grid)))
    for row, result in zip(table, results, strict=True):
        steps, means = map(np.array, zip(*result["evals"], strict=True))
        row[:] = means[np.clip(np.searchsorted(steps, grid, side="right") - 1, 0, None)]
        row[grid < steps[0]] = np.nan
        if result["solved_at"] is not None:
            row[grid >= result["solved_at"]] = result["confirm_mean"]
    return table


def median_bands(results, grid):
    """At each grid step, the seeds' median greedy return with its 95% bootstrap interval (intervals.summarize)."""
    return [intervals.summarize(column[np.isfinite(column)]) for column in returns_by_step(results, grid).T]


def early_returns(out, names, seeds, env_id="CartPole-v1", evaluations=3):
    """A table of each row's median greedy return after its first evaluations, with 95% bootstrap intervals."""
    grid = TASKS[env_id].eval_every * np.arange(1, evaluations + 1)
    header = " | ".join(f"after {step:,} env steps" for step in grid)
    lines = [
        "",
        "Greedy return after the first evaluations, median [95% CI] over the seeds (a seed that has solved "
        "counts at its confirmed mean):",
        "",
        f"| row | {header} |",
        "|---|" + "---|" * len(grid),
    ]
    for name in names:
        results = [r for r in seed_results(out, name, seeds, env_id) if r.get("evals")]
        if results:
            bands = median_bands(results, grid)
            cells = [f"{b['median']:.0f}" + intervals.fmt_interval(*b["median_ci"]) for b in bands]
            lines.append(f"| {rows_for(env_id)[name][1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" if len(lines) > 5 else ""


def returns_figure(out, names, seeds, path, env_id="CartPole-v1"):
    """Each row's median greedy return by env step with a 95% bootstrap band, to the slowest row's 90th percentile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = TASKS[env_id]
    rows = {n: [r for r in seed_results(out, n, seeds, env_id) if r.get("evals")] for n in names}
    rows = {n: results for n, results in rows.items() if results}
    if not rows:
        return
    ends = [percentile_90(steps_to_solve(results)) for results in rows.values()]
    end = max((e for e in ends if np.isfinite(e)), default=max(r["env_steps"] for rs in rows.values() for r in rs))
    grid = np.arange(task.eval_every, end + task.eval_every, task.eval_every)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, results in rows.items():
        bands = median_bands(results, grid)
        (line,) = ax.plot(grid, [b["median"] for b in bands], label=f"{name} ({len(results)} seeds)")
        low, high = zip(*(b["median_ci"] for b in bands), strict=True)
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.15)
    ax.axhline(task.threshold, color="grey", ls="--", lw=1, label=f"threshold {task.threshold:g}")
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy return (median over seeds)")
    ax.set_title(
        f"{env_id}: greedy return by env step, median over seeds and its 95% bootstrap band\n"
        "(a seed that has solved stays at its confirmed mean)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def profile_figure(out, names, seeds, budget, path, env_id="CartPole-v1"):
    """Fraction of seeds solved by each env step, with a 95% bootstrap band: a performance profile."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    task = TASKS[env_id]
    grid = np.arange(0, budget + 1, task.eval_every)
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in names:
        results = seed_results(out, name, seeds, env_id)
        if not results:
            continue
        steps = np.array(steps_to_solve(results))
        solved_by = (steps[:, None] <= grid[None, :]).astype(float)
        resampled = solved_by[rng.integers(len(steps), size=(2000, len(steps)))].mean(1)
        low, high = np.percentile(resampled, [2.5, 97.5], axis=0)
        (line,) = ax.step(grid, solved_by.mean(0), where="post", label=f"{name} ({len(steps)} seeds)")
        ax.fill_between(grid, low, high, step="post", color=line.get_color(), alpha=0.15)
    ax.set_xlabel("env steps")
    ax.set_ylabel("fraction of seeds solved")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(
        f"{env_id}: seeds solved (a greedy eval ≥ {task.threshold:g}, confirmed on {task.confirm_episodes} "
        "episodes) by each env step, 95% bootstrap bands",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=list(TASKS), default="CartPole-v1", help="the task (beyond/tasks.py)")
    p.add_argument("--rows", nargs="*", help=f"rows to run (default: all of the env's; CartPole's: {', '.join(ROWS)})")
    p.add_argument("--seeds", type=seed_list, default=list(REPORT_SEEDS))
    p.add_argument("--budget", type=int, default=None, help="env steps per seed (default: the task's)")
    p.add_argument("--table-only", action="store_true", help="no training: the table and figure from saved results")
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="seeds at a time, one worker process each")
    p.add_argument("--out", default=None, help="default: bench/results, or bench/results/<env> for another env")
    p.add_argument("--wall-ratio", action="store_true", help="the preset's and SB3's rows ran together: compare wall")
    p.add_argument(
        "--side-by-side", action="store_true", help="run each seed's rows at the same time, one process per row"
    )
    args = p.parse_args()
    env_id, rows = args.env, rows_for(args.env)
    unknown = set(args.rows or ()) - set(rows)
    if unknown:
        p.error(f"no such row on {env_id}: {', '.join(sorted(unknown))} (rows: {', '.join(rows)})")
    out, budget = Path(args.out) if args.out else results_dir(env_id), args.budget or TASKS[env_id].budget
    out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:  # seed by seed across the rows, so that their wall times share the machine's moods
        run_rows(out, args.rows or list(rows), args.seeds, budget, args.jobs, env_id, args.side_by_side)
    text = table(out, list(rows), args.seeds, budget, env_id) + comparisons(out, args.seeds, env_id)
    text += early_returns(out, list(rows), args.seeds, env_id)
    if args.wall_ratio:  # the preset's row and each probe's, where it ran beside SB3
        text += "".join(wall_ratio(out, args.seeds, n, env_id=env_id) for n in ["tuned", *PROBES.get(env_id, {})])
    name = "ablation" if args.seeds == list(REPORT_SEEDS) else f"ablation_seeds{args.seeds[0]}-{args.seeds[-1]}"
    (out / f"{name}.md").write_text(text)
    profile = PROFILE_ROWS if env_id == "CartPole-v1" else list(rows)
    profile_figure(out, profile, args.seeds, budget, out / f"{name}.png", env_id)
    returns_figure(out, profile, args.seeds, out / f"{name}_returns.png", env_id)
    print(text)


if __name__ == "__main__":
    main()
