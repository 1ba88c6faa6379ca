"""Run one dqn.py configuration over several seeds and summarise how well it learns.

Every seed is a separate `python dqn.py ... --seed S` process (one per core at a time),
with periodic greedy evaluation on CartPole-v1. From each run's metrics.csv it takes:
  - the env steps until a periodic greedy eval's mean first reaches --solved (475 by default),
  - the final greedy eval (of the weights the run saved), and the wall seconds of the run.
It writes bench/results/<name>.csv (one row per seed), <name>_curve.csv and
<name>.png (mean greedy eval with a 95% bootstrap band against env steps), and prints
a one-line summary that bench/ablation.py gathers into the table of docs/going-further.md.

    python bench/seeds.py --name tuned --seeds 10 -- --preset tuned
    python bench/seeds.py --name blog --seeds 5 -- --eval-every 2500 --max-env-steps 50000 --early-stop 475
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def run_seed(flags, seed, runs_dir):
    """Train one seed in its own process; return its eval points and wall time."""
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "dqn.py"),
            *flags,
            "--seed",
            str(seed),
            "--watch",
            "0",
            "--quiet",
            "--no-show",
            "--runs-dir",
            runs_dir,
            "--run-name",
            f"seed{seed}",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"seed {seed} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return read_run(Path(runs_dir) / f"seed{seed}", seed, wall)


def read_run(run, seed, wall):
    """A finished run folder's periodic evals, final eval and env steps."""
    with open(run / "evals.csv") as f:
        rows = list(csv.DictReader(f))
    # periodic evaluations make the curve; the last row scores the weights the run saved
    evals = [(int(r["env_steps"]), float(r["mean"])) for r in rows if r.get("final", "0") == "0"]
    final = (int(rows[-1]["env_steps"]), float(rows[-1]["mean"])) if rows else None
    if (run / "metrics.csv").exists():
        with open(run / "metrics.csv") as f:
            env_steps = int(list(csv.DictReader(f))[-1]["env_steps"])
    else:  # a kept run trimmed to its evals.csv: the final eval ran at the end
        env_steps = final[0]
    return dict(seed=seed, evals=evals, final=final, env_steps=env_steps, wall_s=wall)


def replot_runs(runs_dir, seeds, table):
    """--replot: the runs kept in runs_dir, with the wall times of the earlier table."""
    with open(table) as f:
        walls = {int(r["seed"]): float(r["wall_s"]) for r in csv.DictReader(f)}
    return [read_run(Path(runs_dir) / f"seed{s}", s, walls[s]) for s in seeds]


def first_solved(evals, solved):
    return next((steps for steps, mean in evals if mean >= solved), None)


def curve(runs, grid):
    """Greedy eval of each run on a common env-step grid (a run's last value carries forward)."""
    table = []
    for run in runs:
        steps = [s for s, _ in run["evals"]]
        means = [m for _, m in run["evals"]]
        idx = np.searchsorted(steps, grid, side="right") - 1
        table.append([means[i] if i >= 0 else np.nan for i in idx])
    return np.array(table, dtype=float)


def bootstrap_ci(values, rng, n=2000):
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    means = rng.choice(values, size=(n, len(values))).mean(axis=1)
    return values.mean(), *np.percentile(means, [2.5, 97.5])


def main():
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], usage="python bench/seeds.py [--name N] [--seeds K] -- DQN_FLAGS..."
    )
    p.add_argument("--name", default="run", help="file stem under --out")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes at a time")
    p.add_argument("--solved", type=float, default=475.0)
    p.add_argument("--window", type=int, default=50_000, help="'solved within' this many env steps")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--runs-dir", default=None, help="keep the run folders here (default: a temporary folder)")
    p.add_argument(
        "--replot",
        action="store_true",
        help="train nothing: redraw from the runs kept in --runs-dir and the wall times in <name>.csv",
    )
    args, flags = p.parse_known_args()
    flags = [f for f in flags if f != "--"]
    if args.seeds < 1 or args.jobs < 1:
        p.error("--seeds and --jobs must be positive")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.replot:
        if not args.runs_dir:
            p.error("--replot needs the --runs-dir that the runs were kept in")
        runs = replot_runs(args.runs_dir, seeds, out / f"{args.name}.csv")
    else:
        with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(args.jobs) as pool:
            runs_dir = args.runs_dir or scratch
            runs = list(pool.map(lambda s: run_seed(flags, s, runs_dir), seeds))

    rows = []
    for run in runs:
        solved_at = first_solved(run["evals"], args.solved)
        rows.append(
            dict(
                seed=run["seed"],
                steps_to_solve=solved_at if solved_at is not None else "",
                final_eval=run["final"][1] if run["final"] else "",
                env_steps=run["env_steps"],
                wall_s=round(run["wall_s"], 1),
            )
        )
    with open(out / f"{args.name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    top = max(r["env_steps"] for r in runs)
    grid = np.linspace(0, top, 101)[1:]
    table = curve(runs, grid)
    rng = np.random.default_rng(0)
    bands = np.array([bootstrap_ci(table[:, i], rng) for i in range(len(grid))])
    with open(out / f"{args.name}_curve.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["env_steps", "mean", "ci_low", "ci_high"])
        writer.writerows([[int(g), *np.round(b, 2)] for g, b in zip(grid, bands, strict=True)])

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    ax.plot(grid, bands[:, 0], label=f"{args.name}: mean of {len(runs)} seeds")
    ax.fill_between(grid, bands[:, 1], bands[:, 2], alpha=0.3, label="95% bootstrap CI")
    if len(runs) <= 3:  # few seeds: show each one too
        for run in [r for r in runs if r["evals"]]:
            (line,) = ax.plot(*zip(*run["evals"], strict=True), lw=0.8, alpha=0.6, label=f"seed {run['seed']}")
            if run["final"]:  # the saved weights' evaluation
                ax.plot(
                    *run["final"],
                    "*",
                    ms=10,
                    color=line.get_color(),
                    label="final eval of the saved weights" if run is runs[0] else None,
                )
    ax.axhline(args.solved, color="grey", ls="--", lw=1)
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy eval return (CartPole-v1)")
    ax.set_title(" ".join(flags) or "dqn.py defaults", fontsize=9)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    fig.tight_layout()
    fig.savefig(out / f"{args.name}.png", dpi=100, bbox_inches="tight")

    solved = [r["steps_to_solve"] for r in rows if r["steps_to_solve"] != ""]
    in_window = [s for s in solved if s <= args.window]
    median_solve = statistics.median(solved + [float("inf")] * (len(rows) - len(solved)))  # unsolved: never
    summary = dict(
        name=args.name,
        flags=" ".join(flags),
        seeds=len(rows),
        median_steps_to_solve=median_solve if median_solve != float("inf") else None,
        solved_within_window=f"{len(in_window)}/{len(rows)}",
        window=args.window,
        median_final_eval=statistics.median(float(r["final_eval"]) for r in rows if r["final_eval"] != ""),
        median_wall_s=statistics.median(r["wall_s"] for r in rows),
    )
    (out / f"{args.name}.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"| seed | steps to eval >= {args.solved:g} | final eval | env steps | wall s |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['seed']} | {r['steps_to_solve'] or 'not reached'} | {r['final_eval']} | {r['env_steps']} "
            f"| {r['wall_s']} |"
        )
    print("SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
