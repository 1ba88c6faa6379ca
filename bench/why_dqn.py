"""Why DQN works, on CartPole: the Nature paper's replay and target-net ablation, and Double DQN's overestimation.

Part 1, the ablation in the shape of Mnih et al. (2015), Extended Data Table 3: the full
agent, no replay, no target net, and neither, on two tasks (the standard CartPole-v1 with
the terminal mask, and the blog's own shaped task), each judged by bench/judge.py on seeds
0-9 and trained on to the budget, so that every run also has a graded score: the mean of
its greedy evaluations over the whole budget (the area under its learning curve).

- No replay: a memory of 32 rows, the batch size, so that each batch is drawn from the 32
  newest transitions. Everything else stays: the batch of 32 drawn with replacement, one
  learn step per env step (so each transition is still drawn 32 times on average, as in
  the full agent), and learning starting after the same 2,000 transitions.
- No target net: target_net is synced before every learn step (--target-replace-iter 1),
  so the TD target comes from the net being trained.

Part 2, the Double DQN paper's measurement (van Hasselt et al., 2016): at every greedy
evaluation, what the net believes (mean max_a Q over the visited states) against what its
greedy policy gets (their true discounted return; beyond/values.py), DQN against --double,
on one pinned configuration at gamma 0.9 and 0.99, and on the blog's shaped task with and
without the terminal mask.

Resumable: each seed's result is appended to bench/results/why_dqn/<row>.jsonl as soon as it is
done; a rerun skips what is there. Seeds run in --jobs worker processes (default: the cores).

    python bench/why_dqn.py                   # every row, seeds 0-9 (about an hour on 2 cores)
    python bench/why_dqn.py --table-only      # the tables and figures from the results so far

Writes bench/results/why_dqn.md, why_dqn_ablation.png and why_dqn_values.png.
"""

import argparse
import json
import os
from pathlib import Path

import intervals
import numpy as np
from ablation import steps_to_solve
from judge import REPORT_SEEDS, in_pool, is_current, judge, seed_list
from speed import cpu_model

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SEEDS = REPORT_SEEDS[:10]  # each run trains to the budget: ten of the report seeds
ABLATION_BUDGET, VALUES_BUDGET = 50_000, 30_000

TASKS = {  # name: (flags, what it is)
    "standard": (["--terminal-mask"], "CartPole-v1, env reward, terminal mask"),
    "shaped": (["--env", "CartPole-v0", "--reward", "shaped"], "the blog's task: unwrapped v0, shaped reward"),
}
NO_REPLAY = ["--memory-capacity", "32", "--learning-starts", "2000"]
NO_TARGET = ["--target-replace-iter", "1"]
CONDITIONS = {  # the paper's columns, in its order
    "full": ([], "with replay, with target net"),
    "no-target": (NO_TARGET, "with replay, without target net"),
    "no-replay": (NO_REPLAY, "without replay, with target net"),
    "neither": (NO_REPLAY + NO_TARGET, "without replay, without target net"),
}
ABLATION_ROWS = {f"{task}-{c}": TASKS[task][0] + CONDITIONS[c][0] for task in TASKS for c in CONDITIONS}

# Plain one-step DQN with the tuned preset's other values, written out so that the preset can move on.
PINNED = [
    *("--terminal-mask", "--huber", "--grad-clip", "10", "--lr", "0.00988", "--batch-size", "64"),
    *("--hidden", "256", "--target-replace-iter", "50", "--learning-starts", "500", "--memory-capacity", "20000"),
    *("--epsilon-start", "0", "--epsilon-end", "1", "--epsilon-steps", "5000"),
]
SHAPED = TASKS["shaped"][0]
VALUE_ROWS = {
    "values-g0.9-dqn": PINNED + ["--gamma", "0.9"],
    "values-g0.9-double": PINNED + ["--gamma", "0.9", "--double"],
    "values-g0.99-dqn": PINNED + ["--gamma", "0.99"],
    "values-g0.99-double": PINNED + ["--gamma", "0.99", "--double"],
    "values-shaped-dqn": SHAPED,
    "values-shaped-double": SHAPED + ["--double"],
    "values-shaped-mask-dqn": SHAPED + ["--terminal-mask"],
}
ROWS = {**ABLATION_ROWS, **VALUE_ROWS}


def row_path(out, name):
    return out / "why_dqn" / f"{name}.jsonl"


def load(out, name, seeds):
    """The results a row has for seeds, in seed order."""
    path = row_path(out, name)
    if not path.exists():
        return []
    done = {r["seed"]: r for r in map(json.loads, path.read_text().splitlines()) if r and is_current(r)}
    return [done[s] for s in seeds if s in done]


def run_one(task):
    """One (row, seed): its judged result, trained to the budget."""
    name, seed = task
    values = name in VALUE_ROWS
    budget = VALUES_BUDGET if values else ABLATION_BUDGET
    return name, judge(ROWS[name], seed, budget, to_budget=True, value_estimates=values)


def run(out, names, seeds, jobs):
    """Judge every missing (row, seed), jobs at a time, appending each result as it arrives."""
    done = {(n, r["seed"]) for n in names for r in load(out, n, seeds)}
    tasks = [(n, s) for s in seeds for n in names if (n, s) not in done]
    row_path(out, "x").parent.mkdir(parents=True, exist_ok=True)
    for name, result in in_pool(run_one, tasks, jobs):
        print(f"{name}: seed {result['seed']}, solved at {result['solved_at']}, {result['wall_s']:.0f} s", flush=True)
        with open(row_path(out, name), "a") as f:
            f.write(json.dumps(result) + "\n")


def curve(results, column=1):
    """(env steps, per-seed values): one column of every seed's periodic evaluations."""
    steps = [e[0] for e in results[0]["evals"]]
    return np.array(steps), np.array([[e[column] for e in r["evals"]] for r in results])


def area_under_curve(results):
    """Per seed: the mean greedy evaluation return over the whole budget."""
    return curve(results)[1].mean(axis=1)


def ablation_table(out, seeds):
    columns = list(CONDITIONS)
    lines = [
        "| task | " + " | ".join(CONDITIONS[c][1] for c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for task in TASKS:
        cells = []
        for c in columns:
            results = load(out, f"{task}-{c}", seeds)
            if not results:
                cells.append("—")
                continue
            s = intervals.summarize(area_under_curve(results))
            solved = sum(r["solved_at"] is not None for r in results)
            cells.append(f"{s['iqm']:.0f} [{s['iqm_ci'][0]:.0f}, {s['iqm_ci'][1]:.0f}] · {solved}/{len(results)}")
        lines.append(f"| {TASKS[task][1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ablation_details(out, seeds):
    lines = [
        "| row | flags | mean eval return over the budget: median [95% CI] | IQM [95% CI] | solved | "
        "env steps to solve: median [95% CI] | passes not confirmed: seeds (passes) | wall s per seed (median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, flags in ABLATION_ROWS.items():
        results = load(out, name, seeds)
        if not results:
            continue
        median, iqm = intervals.fmt_summary(intervals.summarize(area_under_curve(results)))
        solve_median, _ = intervals.fmt_summary(intervals.summarize(steps_to_solve(results)), ABLATION_BUDGET)
        solved = [r for r in results if r["solved_at"] is not None]
        misses = [len(r.get("unconfirmed", [])) for r in results]  # a result of the earlier rule that holds had none
        wall = np.median([r["wall_s"] for r in results])
        lines.append(
            f"| {name} | `{' '.join(flags)}` | {median} | {iqm} | {len(solved)}/{len(results)} | {solve_median} | "
            f"{sum(m > 0 for m in misses)} ({sum(misses)}) | {wall:.0f} |"
        )
    return "\n".join(lines) + "\n"


def gaps(results):
    """(env steps, per-seed q_estimate - true_return at each evaluation)."""
    steps, estimate = curve(results, 2)
    return steps, estimate - curve(results, 3)[1]


def values_table(out, seeds):
    lines = [
        "| row | flags | estimate − truth, mean over the run's evaluations: median [95% CI] | IQM [95% CI] | "
        "over the last 10 evaluations: median [95% CI] | estimate / truth, last 10 evaluations (medians) | "
        "mean eval return over the budget (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, flags in VALUE_ROWS.items():
        results = load(out, name, seeds)
        if not results:
            continue
        gap = gaps(results)[1]
        median, iqm = intervals.fmt_summary(intervals.summarize(gap.mean(axis=1)), digits=2)
        late, _ = intervals.fmt_summary(intervals.summarize(gap[:, -10:].mean(axis=1)), digits=2)
        shown = " ".join(flags[len(PINNED) :] if flags[: len(PINNED)] == PINNED else flags)  # PINNED: above
        estimate, truth = (np.median(curve(results, column)[1][:, -10:].mean(axis=1)) for column in (2, 3))
        auc = np.median(area_under_curve(results))
        lines.append(f"| {name} | `{shown}` | {median} | {iqm} | {late} | {estimate:.2f} / {truth:.2f} | {auc:.0f} |")
    lines += [
        "",
        "Probability that a seed of Double DQN ends with a smaller gap than a seed of DQN (last 10 evaluations):",
        "",
    ]
    lines += ["| pair | P(smaller gap) [95% CI] |", "|---|---|"]
    for dqn_row, double_row in [(f"values-{g}-dqn", f"values-{g}-double") for g in ("g0.9", "g0.99", "shaped")]:
        a, b = load(out, double_row, seeds), load(out, dqn_row, seeds)
        if a and b:
            late_gap = [np.abs(gaps(r)[1][:, -10:].mean(axis=1)) for r in (a, b)]
            p, (low, high) = intervals.probability_of_improvement(*late_gap)
            lines.append(f"| {double_row} against {dqn_row} | {p:.2f} [{low:.2f}, {high:.2f}] |")
    return "\n".join(lines) + "\n"


def band(ax, steps, per_seed, label, **style):
    """The mean over seeds at each point, with a 95% bootstrap band."""
    from scipy import stats

    mean = per_seed.mean(axis=0)
    (line,) = ax.plot(steps, mean, label=f"{label} ({len(per_seed)} seeds)", **style)
    if len(per_seed) > 1:
        ci = stats.bootstrap(
            (per_seed,),
            np.mean,
            axis=0,
            n_resamples=2000,
            method="percentile",
            random_state=np.random.default_rng(0),
        ).confidence_interval
        ax.fill_between(steps, ci.low, ci.high, color=line.get_color(), alpha=0.15)


def ablation_figure(out, seeds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TASKS), figsize=(11, 4), sharey=True)
    for ax, task in zip(axes, TASKS, strict=True):
        for c in CONDITIONS:
            results = load(out, f"{task}-{c}", seeds)
            if results:
                band(ax, *curve(results), CONDITIONS[c][1])
        ax.set_title(TASKS[task][1], fontsize=10)
        ax.set_xlabel("env steps")
        ax.legend(fontsize=7, loc="upper left")
    axes[0].set_ylabel("greedy eval return (CartPole-v1)")
    fig.suptitle("Replay and the target net: mean over seeds, 95% bootstrap bands", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def values_figure(out, seeds, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("g0.9", "pinned DQN, γ = 0.9"),
        ("g0.99", "pinned DQN, γ = 0.99"),
        ("shaped", "the blog's task, γ = 0.9"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for variant, color in (("dqn", "tab:red"), ("double", "tab:blue"), ("mask-dqn", "tab:green")):
            results = load(out, f"values-{key}-{variant}", seeds)
            if results:
                band(
                    ax,
                    *gaps(results),
                    variant.replace("mask-dqn", "DQN + terminal mask")
                    .replace("dqn", "DQN")
                    .replace("double", "Double DQN"),
                    color=color,
                )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("env steps")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("estimate − true discounted return")
    fig.suptitle(
        "What the net believes minus what its greedy policy gets: mean over seeds, 95% bootstrap bands", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def report(out, seeds):
    n = f"seeds {seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else f"seeds {seeds}"
    text = (
        f"`python bench/why_dqn.py` — {n}, {cpu_model()}. Every run is judged by bench/judge.py (a greedy "
        "evaluation of 20 CartPole-v1 episodes every 1,000 env steps; solved at the first mean ≥ 475 whose agent "
        "also averages ≥ 475 on 100 fresh episodes) and trained on to its budget. "
        "Brackets are 95% bootstrap intervals over seeds.\n\n"
        f"## Replay and the target net\n\nIQM over seeds of the mean greedy evaluation return over "
        f"{ABLATION_BUDGET:,} env steps [95% CI] · seeds solved:\n\n"
        + ablation_table(out, seeds)
        + "\n"
        + ablation_details(out, seeds)
        + f"\n## Value estimates against the truth\n\nBudget {VALUES_BUDGET:,} env steps. Estimate: mean max_a Q(s, a) "
        "over the states each evaluation visited; truth: their discounted return under the greedy policy, "
        "in the reward the run learns from.\n\n" + values_table(out, seeds)
    )
    (out / "why_dqn.md").write_text(text)
    ablation_figure(out, seeds, out / "why_dqn_ablation.png")
    values_figure(out, seeds, out / "why_dqn_values.png")
    return text


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", nargs="*", choices=list(ROWS), default=list(ROWS))
    p.add_argument("--seeds", type=seed_list, default=list(SEEDS))
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes, one seed each")
    p.add_argument("--table-only", action="store_true", help="no training: the report from saved results")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    out = Path(args.out)
    if not args.table_only:
        run(out, args.rows, args.seeds, args.jobs)
    print(report(out, args.seeds))


if __name__ == "__main__":
    main()
