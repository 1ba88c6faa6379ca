"""What each extension flag costs per env step, and whether dqn.py without them got slower.

Runs dqn.py at the blog's settings (as bench/speed.py does) with no extension, then with
each of --n-step 3, --dueling and --prioritized, then all three, interleaved in fresh
processes. The cost of a flag is 1/rate - 1/rate_plain in microseconds per learning-phase
env step, paired within a repeat; the table quotes the median over repeats.
--baseline DIR also times DIR/dqn.py (another checkout, e.g. a git worktree of an older
commit) with no flags, as a check that the extension points cost the plain agent nothing.

    python bench/extension_cost.py --repeats 5
    git worktree add /tmp/before <commit> && python bench/extension_cost.py --baseline /tmp/before

Writes bench/results/extension_cost.md, which docs/going-further.md quotes.
"""

import argparse
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

from speed import RESULTS, cpu_model, run_dqn

VARIANTS = {
    "none (the blog's agent)": [],
    "--n-step 3": ["--n-step", "3"],
    "--dueling": ["--dueling"],
    "--prioritized": ["--prioritized"],
    "all three": ["--n-step", "3", "--dueling", "--prioritized"],
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--episodes", type=int, default=300)
    p.add_argument("--max-episode-steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline", default=None, help="a checkout whose dqn.py to time as well, with no flags")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()

    variants = dict(VARIANTS)
    if args.baseline:
        commit = subprocess.run(
            ["git", "-C", args.baseline, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        )
        variants = {f"baseline: dqn.py at {commit.stdout.strip() or args.baseline}": None, **variants}
    rates = {name: [] for name in variants}
    for r in range(args.repeats):
        for name, flags in variants.items():
            if flags is None:
                rate, _ = run_dqn(args, args.seed, script=Path(args.baseline) / "dqn.py")
            else:
                rate, _ = run_dqn(args, args.seed, extra=flags)
            rates[name].append(rate)
            print(f"repeat {r + 1}: {name:40s} {rate:6.0f} env steps/s", flush=True)

    plain = rates["none (the blog's agent)"]
    lines = [
        f"Machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, one torch thread.",
        f"Command: `python bench/extension_cost.py --repeats {args.repeats} --episodes {args.episodes} "
        f"--max-episode-steps {args.max_episode_steps} --seed {args.seed}"
        + (" --baseline DIR" if args.baseline else "")
        + f"` ({time.strftime('%Y-%m-%d')})",
        "",
        "| extension | env steps/s, learning phase (median) | runs | µs per env step vs none (median of pairs) |",
        "|---|---|---|---|",
    ]
    for name, values in rates.items():
        extra = statistics.median(1e6 / v - 1e6 / b for v, b in zip(values, plain, strict=True))
        runs = ", ".join(f"{v:.0f}" for v in values)
        lines.append(f"| {name} | {statistics.median(values):.0f} | {runs} | {extra:+.0f} |")
    if args.baseline:
        ratios = [n / b for n, b in zip(plain, rates[next(iter(rates))], strict=True)]
        lines += ["", f"No extension vs the baseline checkout: median rate ratio **{statistics.median(ratios):.3f}**"]
    table = "\n".join(lines)
    print("\n" + table)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "extension_cost.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
