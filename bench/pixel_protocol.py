"""Does a --pixels configuration learn CartPole from the screen, seed after seed?

Each seed is one `python dqn.py --preset pixels <variant's flags>` run in its own process,
one per core, that evaluates 20 greedy episodes every 20,000 env steps, keeps the weights
of its best evaluation, and stops at a pass (>= 475) only if the same weights pass again on
100 fresh episodes (--confirm-episodes). The kept weights then play TEST_EPISODES more
CartPole-v1 episodes whose seeds no part of the run used (test_seed): the seed succeeds if
they average >= 475. Wall time is the run's, evaluations included, plus that test.

Every finished seed writes <out>/<variant>/seed<S>/result.json beside its run folder
(model.pt, evals.csv, metrics.csv), and a rerun skips those: a long bench resumes.

    python bench/pixel_protocol.py --variant track --seeds 100-101 --budget 250000   # a screen
    python bench/pixel_protocol.py --seeds 200-204                                   # the protocol, --preset pixels
    python bench/pixel_protocol.py --table                                          # pixel_protocol.md and .png
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from intervals import fmt_summary, summarize  # noqa: E402
from judge import in_pool, seed_list  # noqa: E402
from seeds import bootstrap_ci, curve  # noqa: E402
from speed import cpu_model  # noqa: E402

OUT = ROOT / "bench" / "results" / "pixel_protocol"
SOLVED, TEST_EPISODES, BUDGET = 475.0, 100, 500_000
# Disjoint from each other and from seeds 0-2, which chose the earlier preset.
SCREEN_SEEDS, PROTOCOL_SEEDS, CONFIRM_SEEDS = range(100, 102), range(200, 205), range(205, 208)
RUN_FLAGS = ("--eval-every", "20000", "--eval-episodes", "20", "--confirm-episodes", "100", "--keep-best")
# The levers and their values in the first screen; a variant overrides some, and names all
# of them in its flags, so that it means the same whatever --preset pixels holds.
LEVERS = {
    "--reward": "env",
    "--track-strip": False,
    "--n-step": 1,
    "--prioritized": False,
    "--dueling": False,
    "--gamma": 0.99,
    "--lr": 1e-4,
    "--target-replace-iter": 1000,
    "--batch-size": 32,
}
TRACK_NSTEP3 = {"--track-strip": True, "--n-step": 3}
VARIANTS = {
    "close-up": {},
    "track": {"--track-strip": True},
    "track-nstep3": TRACK_NSTEP3,
    "track-nstep3-per": {**TRACK_NSTEP3, "--prioritized": True},
    "track-nstep3-shaped": {**TRACK_NSTEP3, "--reward": "shaped"},
    "close-up-nstep3-shaped": {"--n-step": 3, "--reward": "shaped"},
    "track-shaped": {"--track-strip": True, "--reward": "shaped"},
    "track-nstep3-gamma0.995": {**TRACK_NSTEP3, "--gamma": 0.995},
    "track-nstep3-lr5e-5": {**TRACK_NSTEP3, "--lr": 5e-5},
    "track-nstep3-target4000": {**TRACK_NSTEP3, "--target-replace-iter": 4000},
    "track-nstep3-batch64": {**TRACK_NSTEP3, "--batch-size": 64},
}

PRESET_VARIANT = "track-nstep3-shaped"  # what --preset pixels holds (a test keeps them equal)


def variant_flags(variant):
    """dqn.py flags that set every lever to the variant's value."""
    flags = []
    for flag, value in {**LEVERS, **VARIANTS[variant]}.items():
        if isinstance(value, bool):
            flags.append(flag if value else flag.replace("--", "--no-", 1))
        else:
            flags += [flag, str(value)]
    return flags


def test_seed(seed):
    """Episode seeds for the final test, apart from the run's evaluations (10,000 + seed) and confirmations."""
    return 500_000_000 + 1000 * seed


def run_seed(task):
    """Train one seed of a variant, test its kept weights; write and return its result."""
    variant, seed, budget, out = task
    run_dir = Path(out) / variant / f"seed{seed}"
    flags = ["--preset", "pixels", *variant_flags(variant), *RUN_FLAGS, "--max-env-steps", str(budget)]
    command = [sys.executable, str(ROOT / "dqn.py"), *flags, "--seed", str(seed)]
    command += ["--watch", "0", "--snapshots", "0", "--quiet", "--no-show"]
    command += ["--runs-dir", str(run_dir.parent), "--run-name", run_dir.name]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{variant} seed {seed} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    for leftover in ("resume.pt", "rewards.png"):  # resume.pt holds the whole replay memory
        (run_dir / leftover).unlink(missing_ok=True)
    start = time.perf_counter()
    test = test_agent(run_dir / "model.pt", seed)
    result = dict(
        variant=variant,
        flags=flags,
        seed=seed,
        budget=budget,
        **test,
        success=test["test_mean"] >= SOLVED,
        test_wall_s=time.perf_counter() - start,
        run_wall_s=wall,
        **read_evals(run_dir),
        processor=cpu_model(),
    )
    (run_dir / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def test_agent(model, seed):
    """The checkpoint's greedy mean and min over TEST_EPISODES fresh CartPole-v1 episodes."""
    import torch

    from beyond.evaluation import evaluate
    from beyond.files import load_checkpoint

    torch.set_num_threads(1)
    agent, _ = load_checkpoint(model)
    result = evaluate(agent, TEST_EPISODES, "CartPole-v1", seed=test_seed(seed))
    return dict(test_mean=result["mean"], test_min=result["min"])


def read_evals(run_dir):
    """The run's periodic evaluations, its passes' confirmations, and how many env steps it trained."""
    with open(run_dir / "evals.csv") as f:
        rows = list(csv.DictReader(f))
    with open(run_dir / "metrics.csv") as f:
        env_steps = int(list(csv.DictReader(f))[-1]["env_steps"])
    periodic = [r for r in rows if r["final"] == "0"]
    return dict(
        env_steps=env_steps,
        evals=[(int(r["env_steps"]), float(r["mean"])) for r in periodic],
        confirmations=[(int(r["env_steps"]), float(r["confirmed_mean"])) for r in periodic if r["confirmed_mean"]],
    )


def load(out, variant):
    """The finished seeds' results of a variant, by seed."""
    found = {}
    for path in sorted((Path(out) / variant).glob("seed*/result.json")):
        result = json.loads(path.read_text())
        found[result["seed"]] = result
    return found


def success_interval(successes, n):
    """The exact (Clopper-Pearson) 95% interval of a success rate."""
    from scipy.stats import binomtest

    interval = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="exact")
    return interval.low, interval.high


def groups(out, seed_sets):
    """(variant, seed set's label, its finished results) for each pair that has any."""
    for variant in VARIANTS:
        results = load(out, variant)
        for label, seeds in seed_sets.items():
            rows = [results[s] for s in seeds if s in results]
            if rows:
                yield variant, label, rows


def table(out, seed_sets):
    """One markdown row per variant and seed set that has results."""
    lines = [
        "| variant | seeds | budget | ≥ 475 on 100 fresh episodes (95% CI) | test mean: median [95% CI] | IQM [95% CI] "
        "| per seed: test mean (env steps, wall s) |",
        "|---|---|---|---|---|---|---|",
    ]
    processors = set()
    for variant, label, rows in groups(out, seed_sets):
        processors |= {r["processor"] for r in rows}
        k, n = sum(r["success"] for r in rows), len(rows)
        low, high = success_interval(k, n)
        median, iqm = fmt_summary(summarize([r["test_mean"] for r in rows]), digits=1)
        per_seed = ", ".join(
            f"{r['seed']}: {r['test_mean']:.1f} ({r['env_steps']:,}, {r['run_wall_s'] + r['test_wall_s']:.0f})"
            for r in rows
        )
        budgets = sorted({f"{r['budget']:,}" for r in rows})
        lines.append(
            f"| {variant} | {label} | {'/'.join(budgets)} | {k}/{n} ({low:.2f}, {high:.2f}) | {median} | {iqm} "
            f"| {per_seed} |"
        )
    return "\n".join(lines) + f"\n\nProcessor: {', '.join(sorted(processors))}; one seed per core.\n"


def figure(out, seed_sets, path):
    """Mean periodic greedy eval against env steps, with 95% bootstrap bands: the screens, then the other seed sets.

    A run that stopped at a confirmed pass carries its last evaluation to the end of the
    longest run of its group.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    rng = np.random.default_rng(0)
    for variant, label, runs in groups(out, seed_sets):
        grid = np.arange(20_000, max(r["env_steps"] for r in runs) + 1, 20_000)
        bands = np.array([bootstrap_ci(column, rng) for column in curve(runs, grid).T])
        ax = axes[0] if label == "screen" else axes[1]
        ax.plot(grid, bands[:, 0], label=f"{variant}, {label} ({len(runs)} seeds)")
        ax.fill_between(grid, bands[:, 1], bands[:, 2], alpha=0.2)
    axes[0].set_title("screens: seeds 100-101, 250,000 env steps", fontsize=10)
    axes[1].set_title("the protocol: fresh seeds", fontsize=10)
    axes[0].set_ylabel("greedy eval, 20 episodes (mean over seeds)")
    for ax in axes:
        ax.axhline(SOLVED, color="grey", linestyle="--", linewidth=1)
        ax.set_xlabel("env steps")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("--pixels on CartPole-v1: mean and 95% bootstrap band over seeds", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", choices=sorted(VARIANTS), default=PRESET_VARIANT)
    p.add_argument("--seeds", type=seed_list, default=list(PROTOCOL_SEEDS))
    p.add_argument("--budget", type=int, default=BUDGET)
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="seeds at a time, one process each")
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--table", action="store_true", help="write pixel_protocol.md and .png from the results")
    args = p.parse_args()
    if args.table:
        seed_sets = {"screen": SCREEN_SEEDS, "protocol": PROTOCOL_SEEDS, "confirm": CONFIRM_SEEDS}
        markdown = table(args.out, seed_sets)
        Path(args.out + ".md").write_text(markdown)
        figure(args.out, seed_sets, args.out + ".png")
        print(markdown)
        return
    done = load(args.out, args.variant)
    todo = [(args.variant, s, args.budget, args.out) for s in args.seeds if s not in done]
    for result in in_pool(run_seed, todo, args.jobs):
        print(
            f"{result['variant']} seed {result['seed']}: test mean {result['test_mean']:.1f} "
            f"(min {result['test_min']:.0f}) after {result['env_steps']:,} env steps, "
            f"{result['run_wall_s']:.0f} s + {result['test_wall_s']:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
