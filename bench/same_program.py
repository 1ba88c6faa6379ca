"""Is it the same program? Short runs of this tree and of another revision, compared number for number.

A refactor must leave every run as it was: the same seed, the same episodes, losses and
evaluations. The same seed can take another path on another processor, so the check runs
both trees here, one after the other, on the same machine. Each run's metrics.csv and
evals.csv are compared without their wall-clock column.

    python bench/same_program.py --against main          # every run below
    python bench/same_program.py --against HEAD~3 --runs blog tuned
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = {  # name: dqn.py flags, each a few seconds; together they reach every extension and both agents
    "blog": ["--episodes", "30"],
    "tuned": ["--preset", "tuned", "--max-env-steps", "3000"],
    "dueling": ["--preset", "tuned", "--dueling", "--max-env-steps", "2000"],
    "acrobot": ["--preset", "tuned", "--env", "Acrobot-v1", "--max-env-steps", "2500"],
    "mountaincar": ["--preset", "tuned", "--env", "MountainCar-v0", "--max-env-steps", "3000"],
    "pixels": ["--pixels", "--max-env-steps", "600", "--learning-starts", "200", "--memory-capacity", "400"],
}
QUIET = ["--seed", "3", "--watch", "0", "--snapshots", "0", "--no-show", "--quiet", "--no-keep-best"]


def run(tree, flags, runs_dir):
    """python dqn.py flags in tree, its run folder under runs_dir; returns the folder."""
    command = [sys.executable, "dqn.py", *flags, *QUIET, "--runs-dir", str(runs_dir), "--run-name", "run"]
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy"}
    subprocess.run(command, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    return Path(runs_dir) / "run"


def rows(path):
    """A CSV's rows without the wall-clock column (which no two runs share)."""
    if not path.exists():
        return None
    return [{k: v for k, v in row.items() if k != "wall_s"} for row in csv.DictReader(path.open())]


def differences(names, other_tree, scratch):
    """{run name: the files whose numbers differ} for each run in names (empty: the same program)."""
    found = {}
    for name in names:
        here = run(ROOT, RUNS[name], scratch / name / "here")
        there = run(other_tree, RUNS[name], scratch / name / "there")
        found[name] = [f for f in ("metrics.csv", "evals.csv") if rows(here / f) != rows(there / f)]
    return found


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", required=True, help="a git revision to compare with, e.g. main or HEAD~1")
    p.add_argument("--runs", nargs="*", choices=list(RUNS), default=list(RUNS))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(other), args.against], cwd=ROOT, check=True)
        try:
            found = differences(args.runs, other, Path(scratch))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=True)
    for name, files in found.items():
        print(f"{name}: {'the same' if not files else 'DIFFERENT: ' + ', '.join(files)}")
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
