"""The ablation in docs/going-further.md: the blog's defaults, each known fix alone on top, and the preset.

Every row is `bench/seeds.py` over --seeds seeds (default 5), with a greedy evaluation on
CartPole-v1 every 2,500 env steps, a 50,000-step budget and a stop at eval >= 475. Then
`--preset tuned` exactly as a user runs it (its own eval every 1,000 steps) over 10 seeds.

    python bench/ablation.py                 # about 15 minutes on 2 cores
    python bench/ablation.py --seeds 3 --only blog tuned

Writes bench/results/ablation.md, ablation.png and each row's CSV/PNG/JSON.
"""

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BUDGET = ["--eval-every", "2500", "--max-env-steps", "50000", "--episodes", "100000", "--early-stop", "475"]
ROWS = {  # name: (flags on top of the blog's defaults, what the row shows)
    "blog": ([], "the blog's defaults (unwrapped v0, shaped reward)"),
    "terminal-mask": (["--terminal-mask"], "+ no bootstrap from terminated states"),
    "double": (["--double"], "+ Double DQN target"),
    "huber": (["--huber"], "+ Huber loss"),
    "grad-clip": (["--grad-clip", "10"], "+ gradient norm clipped at 10"),
    "epsilon-schedule": (
        ["--epsilon-start", "0", "--epsilon-end", "0.99", "--epsilon-steps", "10000"],
        "+ greedy probability 0 → 0.99 over 10k steps",
    ),
    "standard-task": (["--env", "CartPole-v1", "--reward", "env"], "+ CartPole-v1 and its own reward"),
    "tuned": (["--preset", "tuned"], "`--preset tuned` (all of the above, retuned)"),
}


def run_row(name, flags, seeds, out, budget=BUDGET):
    command = [
        sys.executable,
        str(ROOT / "bench" / "seeds.py"),
        "--name",
        name,
        "--seeds",
        str(seeds),
        "--out",
        str(out),
        "--",
        *budget,
        *flags,
    ]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / f"{name}.json").read_text())


def figure(names, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name in names:
        with open(out / f"{name}_curve.csv") as f:
            rows = list(csv.DictReader(f))
        steps = [float(r["env_steps"]) for r in rows]
        (line,) = ax.plot(steps, [float(r["mean"]) for r in rows], label=name, lw=2.5 if name == "tuned" else 1.2)
        if name in ("blog", "tuned"):
            ax.fill_between(
                steps,
                [float(r["ci_low"]) for r in rows],
                [float(r["ci_high"]) for r in rows],
                color=line.get_color(),
                alpha=0.2,
            )
    ax.axhline(475, color="grey", ls="--", lw=1)
    ax.set_xlabel("env steps")
    ax.set_ylabel("greedy eval return, CartPole-v1 (mean of seeds)")
    ax.set_title(
        "Each fix on top of the blog's DQN, and the tuned preset (95% CI shaded);\n"
        "a run's curve ends where it reached 475 and stopped",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(out / "ablation.png", dpi=100)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--tuned-seeds", type=int, default=10)
    p.add_argument("--only", nargs="*", choices=sorted(ROWS), default=sorted(ROWS, key=list(ROWS).index))
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--replot", action="store_true", help="rebuild the table and figure from the saved results")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    if args.replot:
        summaries = {name: json.loads((out / f"{name}.json").read_text()) for name in args.only}
    else:
        summaries = {name: run_row(name, ROWS[name][0], args.seeds, out) for name in args.only}
    lines = [
        f"Each row: `python bench/seeds.py --seeds {args.seeds} -- {' '.join(BUDGET)} FLAGS` "
        "(greedy eval: 20 episodes of CartPole-v1).",
        "",
        "| configuration | flags | median env steps to eval ≥ 475 | solved within 50k | median final eval | "
        "median wall s |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in summaries.items():
        steps = f"{s['median_steps_to_solve']:,.0f}" if s["median_steps_to_solve"] is not None else "not reached"
        lines.append(
            f"| {ROWS[name][1]} | `{' '.join(ROWS[name][0]) or '(none)'}` | {steps} | "
            f"{s['solved_within_window']} | {s['median_final_eval']:.0f} | {s['median_wall_s']:.0f} |"
        )
    if "tuned" in args.only and args.tuned_seeds:
        t = (
            json.loads((out / "tuned10.json").read_text())
            if args.replot
            else run_row("tuned10", ROWS["tuned"][0], args.tuned_seeds, out, budget=[])
        )  # as a user runs it
        steps = f"{t['median_steps_to_solve']:,.0f}" if t["median_steps_to_solve"] is not None else "not reached"
        lines += [
            "",
            f"`python dqn.py --preset tuned` (its own greedy eval every 1,000 env steps) over "
            f"{args.tuned_seeds} seeds (`bench/results/tuned10.csv`): median "
            f"**{steps}** env steps to a greedy eval ≥ 475, **{t['solved_within_window']}** seeds within "
            f"50,000 steps, median final eval {t['median_final_eval']:.0f}, median wall "
            f"{t['median_wall_s']:.0f} s per seed (two seeds at a time on 2 cores).",
        ]
    figure(list(summaries), out)
    text = "\n".join(lines) + "\n"
    (out / "ablation.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
