"""Regenerate the README's figures and the numbers of docs/performance.md, "What to expect".

    python bench/figures.py            # python dqn.py --seed 0, then the figures and numbers

Writes docs/rewards.png (the run's plot), docs/agent.gif (the trained agent, greedy, one
episode, with its Q-values), docs/learning.gif (the run's learning video) and
bench/results/default_run.md (wall time, steps and rewards of the run).
"""

import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from speed import cpu_model

ROOT = Path(__file__).resolve().parent.parent


def timed_run(seed, runs, name, *flags):
    """python dqn.py --seed seed FLAGS, headless, in runs/name; returns its wall time and printout."""
    command = [sys.executable, str(ROOT / "dqn.py"), "--seed", str(seed), "--no-show", "--quiet"]
    start = time.perf_counter()
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run(
        [*command, *flags, "--runs-dir", runs, "--run-name", name], env=env, capture_output=True, text=True, check=True
    ).stdout
    return time.perf_counter() - start, out


def training_time(out):
    """The seconds in dqn.py's 'trained ... in X s' line."""
    line = next(line for line in out.splitlines() if line.startswith("trained "))
    return line.split(" in ")[1].split(" (")[0]


def main(seed=0):
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as runs:
        figures = ["--watch", "1", "--video", str(docs / "agent.gif"), "--plot", str(docs / "rewards.png")]
        wall, out = timed_run(seed, runs, "readme", *figures)
        with open(Path(runs) / "readme" / "metrics.csv") as f:
            rows = list(csv.DictReader(f))
        shutil.copyfile(Path(runs) / "readme" / "learning.gif", docs / "learning.gif")
        headless, headless_out = timed_run(seed, runs, "headless")  # agent.mp4 (3 episodes) and learning.mp4
        bare, bare_out = timed_run(seed, runs, "bare", "--snapshots", "0")  # agent.mp4 only
    last = rows[-50:]
    summary = next(line for line in out.splitlines() if line.startswith("trained "))
    evaluation = next(line for line in out.splitlines() if line.startswith("greedy evaluation"))
    first_learning = next(int(r["episode"]) for r in rows if r["learning"] == "True")
    text = "\n".join(
        [
            f"`python dqn.py --seed {seed}` on this machine ({cpu_model()}, {os.cpu_count()} cores; "
            f"{time.strftime('%Y-%m-%d')}):",
            "",
            f"- `{summary}`",
            f"- `{evaluation}`",
            f"- whole command, including evaluation, saving and recording both GIFs: {wall:.1f} s",
            f"- without a display, writing agent.mp4 and learning.mp4: {headless:.1f} s; with `--snapshots 0` "
            f"(no learning video): {bare:.1f} s; training alone {training_time(headless_out)} with the "
            f"snapshots and {training_time(bare_out)} without",
            f"- learning started in episode {first_learning}",
            f"- last 50 episodes: mean {statistics.mean(int(r['steps']) for r in last):.0f} steps "
            f"(median {statistics.median(int(r['steps']) for r in last):.0f}), "
            f"mean shaped reward {statistics.mean(float(r['reward']) for r in last):.1f} "
            f"(min {min(float(r['reward']) for r in last):.1f}, max {max(float(r['reward']) for r in last):.1f})",
            "",
        ]
    )
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "default_run.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
