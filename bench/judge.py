"""The judge: one protocol for every CartPole number in the docs.

- The task is CartPole-v1 with the env's own reward, unless a row's flags say otherwise
  (the blog's shaped reward on unwrapped v0 is its own row, never compared with the rest).
- Every 1,000 env steps a greedy evaluation plays 20 episodes of CartPole-v1. The first
  one with a mean >= 475 solves the seed, and training stops there.
- That agent is then confirmed on 100 fresh episodes, because the first evaluation to pass
  is a lucky one; the confirmation is reported too.
- A seed that does not solve within the budget is unsolved: it counts as the worst value,
  never as a number of steps.
- Wall time is the whole run, evaluations included, with one torch thread; the benches run
  one seed per core (--jobs), each in a fresh worker process.

    python bench/judge.py --seeds 0-9 -- --preset tuned          # one configuration, printed, 2 seeds at a time
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dqn  # noqa: E402 (after the path to the repo root is known)
from beyond.cli import REWARDS, build  # noqa: E402
from beyond.evaluation import evaluate  # noqa: E402
from beyond.flags import parse_args  # noqa: E402
from beyond.hooks import TrainingHooks, copy_weights  # noqa: E402

EVAL_EVERY, EVAL_EPISODES, SOLVED, CONFIRM_EPISODES = 1000, 20, 475.0, 100
BUDGET = 50_000
EVAL_COLUMNS = ("env_steps", "mean", "q_estimate", "true_return")  # what a result keeps of each evaluation
REPORT_SEEDS = range(10)  # the seeds the docs report; the tuner uses others (bench/tune.py)


def confirm_seed(seed):
    """Episode seeds for the confirmation, apart from the periodic evaluations' (10,000 + seed + i)."""
    return 1_000_000 + 1000 * seed


def protocol_flags(flags, seed, budget, to_budget=False, value_estimates=False):
    """dqn.py flags for one judged run: the standard task, then the row's flags, then the judge's."""
    return [
        *("--env", "CartPole-v1", "--reward", "env"),
        *flags,
        *("--eval-every", EVAL_EVERY, "--eval-episodes", EVAL_EPISODES, "--early-stop", SOLVED),
        *("--max-env-steps", budget, "--episodes", 10**9, "--seed", seed),
        *("--no-keep-best", "--watch", "0", "--snapshots", "0", "--quiet", "--no-show"),
        *(["--no-early-stop"] if to_budget else []),
        "--value-estimates" if value_estimates else "--no-value-estimates",
    ]


class JudgedHooks(TrainingHooks):
    """dqn.py's TrainingHooks that also tell on_eval(env_steps, mean) after each periodic evaluation.

    A run that goes on to its budget (--no-early-stop) still remembers the weights of the
    first evaluation that passed, as `passed`, so that they can be confirmed.
    """

    def __init__(self, agent, env, args, on_eval=None, reward_fn=None):
        super().__init__(agent, env, args, log=None, reward_fn=reward_fn)
        self.on_eval = on_eval
        self.passed = None

    def run_eval(self, env_steps):
        super().run_eval(env_steps)
        if self.passed is None and self.evals[-1]["mean"] >= SOLVED:
            self.passed = self.solved or (self.evals[-1], copy_weights(self.agent.eval_net))
        if self.on_eval:
            self.on_eval(env_steps, self.evals[-1]["mean"])


def judge(flags, seed, budget=BUDGET, on_eval=None, to_budget=False, value_estimates=False):
    """Train dqn.py with flags on one seed under the protocol; return what the judge records.

    on_eval(env_steps, mean), if given, hears every periodic evaluation; raising from it
    (e.g. optuna.TrialPruned) abandons the run. to_budget: train on after solving, to the
    budget (the solve and its confirmation are the same, since evaluating changes nothing
    in training); value_estimates: each evaluation also records q_estimate and true_return.
    """
    args = parse_args([str(f) for f in protocol_flags(flags, seed, budget, to_budget, value_estimates)])
    start = time.perf_counter()
    env, agent = build(args)
    reward_fn = REWARDS[args.reward]
    hooks = JudgedHooks(agent, env, args, on_eval, reward_fn)
    records = dqn.train(agent, env, args.episodes, args.max_episode_steps, reward_fn, seed, None, hooks)
    env.close()
    solved_at, confirm = None, None
    if hooks.passed:
        solved_at = hooks.passed[0]["env_steps"]
        agent.eval_net.load_state_dict(hooks.passed[1])  # the agent as it passed, not a step later
        confirm = evaluate(agent, CONFIRM_EPISODES, "CartPole-v1", seed=confirm_seed(seed))["mean"]
    return dict(
        seed=seed,
        solved_at=solved_at,
        confirm_mean=confirm,
        env_steps=records[-1]["env_steps"] if records else 0,
        wall_s=time.perf_counter() - start,
        evals=[tuple(e[k] for k in EVAL_COLUMNS if k in e) for e in hooks.evals],
    )


def in_pool(work, tasks, jobs):
    """work(task) for each task, jobs at a time, each in a fresh worker process; yields results as they finish.

    A fresh process per task makes every seed's run its own, with nothing carried over from
    the run before it (torch's threads, caches, module state), so a result does not depend
    on --jobs or on the order: one process per core reports each seed's wall time as it
    would be measured alone on that core.
    """
    import multiprocessing

    with multiprocessing.get_context("spawn").Pool(jobs, maxtasksperchild=1) as pool:
        yield from pool.imap_unordered(work, tasks)


def judge_task(task):
    """in_pool's work for judge(): task is (flags, seed, budget)."""
    return judge(*task)


def describe(result):
    """One line for a judged seed."""
    r = result
    return f"seed {r['seed']}: solved at {r['solved_at']}, confirmed {r['confirm_mean']}, {r['wall_s']:.1f} s"


def seed_list(text):
    """'0-9' or '0,3,5' -> a list of ints."""
    if "-" in text:
        first, last = map(int, text.split("-"))
        return list(range(first, last + 1))
    return [int(s) for s in text.split(",")]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=seed_list, default=list(REPORT_SEEDS))
    p.add_argument("--budget", type=int, default=BUDGET)
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="seeds at a time, one worker process each")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="after --: dqn.py flags")
    args = p.parse_args()
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    for r in in_pool(judge_task, [(flags, seed, args.budget) for seed in args.seeds], args.jobs):
        print(describe(r), flush=True)


if __name__ == "__main__":
    main()
