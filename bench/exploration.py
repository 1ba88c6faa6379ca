"""Where the agent went (beyond/exploration.py): runs judged as bench/judge.py judges them, their visits drawn.

Each seed trains under the judge's protocol (it stops at a confirmed pass, or at the
budget) while every state its training env shows is recorded; the figure has a row per
seed: the visited states in the first, middle and last third of its env steps, and the
greedy action of its final agent over the same plane, with the task's marks.

    python bench/exploration.py --env MountainCar-v0 --seeds 1000,1001 -- --preset tuned
    python bench/exploration.py --env MountainCar-v0 --seeds 1001 --out docs/x.png -- --preset tuned --n-step 10

Writes docs/exploration_<env>.png unless --out says otherwise, and prints each run's outcome.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from judge import describe, judged_hooks, protocol_flags, seed_list  # noqa: E402

import dqn  # noqa: E402
from beyond.cli import REWARDS, build  # noqa: E402
from beyond.exploration import VisitedStates, exploration_figure, plane_of  # noqa: E402
from beyond.flags import parse_args  # noqa: E402
from beyond.tasks import TASKS  # noqa: E402


def explored(flags, seed, env_id, budget=None):
    """One judged run that records its visits: (its outcome line, its visits, its agent, the plane)."""
    task = TASKS[env_id]
    args = parse_args([str(f) for f in protocol_flags(flags, seed, budget or task.budget, task=task)])
    env, agent = build(args)
    plane = plane_of(env)
    if plane is None:
        raise SystemExit(f"exploration.py: {env_id}'s state cannot be read on a plane")
    env = VisitedStates(env, plane)
    hooks = judged_hooks(agent, env, args, reward_fn=REWARDS[args.reward], task=task)
    records = dqn.train(agent, env, args.episodes, args.max_episode_steps, REWARDS[args.reward], seed, None, hooks)
    passed = hooks.evaluator.passed
    solved = passed[0]["env_steps"] if passed else None
    outcome = dict(seed=seed, solved_at=solved, confirm_mean=passed[1] if passed else None, wall_s=0.0)
    outcome["unconfirmed"] = hooks.evaluator.unconfirmed
    print(describe(outcome).rsplit(",", 1)[0], f"after {records[-1]['env_steps']:,} env steps", flush=True)
    title = f"seed {seed}, " + (f"solved at {solved:,}" if solved else "unsolved")
    return title, env.visits[: env.count].copy(), agent, plane


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=list(TASKS), default="MountainCar-v0")
    p.add_argument("--seeds", type=seed_list, default=[1000])
    p.add_argument("--budget", type=int, default=None, help="env steps per seed (default: the task's)")
    p.add_argument("--out", default=None, help="the figure's path (default: docs/exploration_<env>.png)")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="after --: dqn.py flags")
    args = p.parse_args()
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    runs = [explored(flags, seed, args.env, args.budget) for seed in args.seeds]
    figure = exploration_figure(
        [(title, visits, agent, agent.n_states) for title, visits, agent, _ in runs], runs[0][3]
    )
    out = Path(args.out or ROOT / "docs" / f"exploration_{args.env.split('-')[0].lower()}.png")
    figure.savefig(out, dpi=90)
    print(f"saved {out}")


if __name__ == "__main__":
    main()
