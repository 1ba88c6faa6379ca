"""The judge: one protocol for every number in the docs, on each task of beyond/tasks.py.

- The task is CartPole-v1 with the env's own reward, unless a row's flags say otherwise
  (the blog's shaped reward on unwrapped v0 is its own row, never compared with the rest),
  or --env names another task: Acrobot-v1, MountainCar-v0 or LunarLander-v3.
- Every 1,000 env steps (each task's own cadence) a greedy evaluation plays 20 episodes.
  One with a mean at the task's threshold (CartPole's 475) is a pass, and the same weights
  then play 100 fresh episodes, because the first evaluation to pass is often a lucky one.
  The seed is solved at the first pass whose confirmation also reaches the threshold, and
  training stops there; a pass that does not confirm is recorded (`unconfirmed`) and
  training goes on.
- A seed that does not solve within the budget is unsolved: it counts as the worst value,
  never as a number of steps.
- Wall time is the whole run, evaluations included, with one torch thread; the benches run
  one seed per core (--jobs), each in a fresh worker process.

    python bench/judge.py --seeds 0-9 -- --preset tuned          # one configuration, printed, 2 seeds at a time
    python bench/judge.py --env Acrobot-v1 --seeds 0-1 -- --preset tuned
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
from beyond.evaluation import Confirmation, confirm_seed, evaluate  # noqa: E402
from beyond.flags import parse_args  # noqa: E402
from beyond.hooks import Evaluator, TrainingHooks  # noqa: E402
from beyond.tasks import TASKS  # noqa: E402

CARTPOLE = TASKS["CartPole-v1"]
EVAL_EVERY, EVAL_EPISODES, SOLVED = CARTPOLE.eval_every, CARTPOLE.eval_episodes, CARTPOLE.threshold
CONFIRM_EPISODES, BUDGET = CARTPOLE.confirm_episodes, CARTPOLE.budget
EVAL_COLUMNS = ("env_steps", "mean", "q_estimate", "true_return")  # what a result keeps of each evaluation
# Three disjoint seed sets: the tuner chooses on the tuning seeds (the tail study's; the first
# study used 1000-1004), the docs report the report seeds, and the held-out seeds are judged
# once, for the preset the tuner chose.
TUNING_SEEDS, REPORT_SEEDS, HELD_OUT_SEEDS = range(1000, 1020), range(30), range(3000, 3030)


def confirm(agent, seed, attempt=0, task=CARTPOLE):
    """The agent's greedy mean over the task's confirmation episodes, its attempt-th confirmation on this seed."""
    return evaluate(agent, task.confirm_episodes, task.env_id, seed=confirm_seed(seed, attempt))["mean"]


def is_current(result, task=CARTPOLE):
    """False for a result of the earlier rule, where a pass solved the seed unconfirmed: it is judged again."""
    return result["solved_at"] is None or result["confirm_mean"] >= task.threshold


def protocol_flags(flags, seed, budget, value_estimates=False, task=CARTPOLE):
    """dqn.py flags for one judged run: the standard task, then the row's flags, then the judge's."""
    cadence = ("--eval-every", task.eval_every, "--eval-episodes", task.eval_episodes)
    return [
        *("--env", task.env_id, "--reward", "env"),
        *flags,
        *cadence,
        "--no-early-stop",  # JudgedEvaluator stops
        *("--max-env-steps", budget, "--episodes", 10**9, "--seed", seed),
        *("--no-keep-best", "--watch", "0", "--snapshots", "0", "--quiet", "--no-show"),
        "--value-estimates" if value_estimates else "--no-value-estimates",
    ]


class JudgedEvaluator(Evaluator):
    """The Evaluator that confirms each pass, stops at the first confirmed one, and tells on_eval(env_steps, mean).

    `passed`: (eval result, confirmation mean) of the first confirmed pass;
    `unconfirmed`: (env_steps, eval mean, confirmation mean) of each pass before it.
    to_budget: remember the confirmed pass and train on to the budget.
    """

    def __init__(self, agent, args, on_eval=None, reward_fn=None, to_budget=False, task=CARTPOLE):
        super().__init__(agent, args, log=None, reward_fn=reward_fn)
        self.on_eval, self.to_budget = on_eval, to_budget
        self.passes = Confirmation(task.threshold, lambda attempt: confirm(agent, args.seed, attempt, task))
        self.passed, self.unconfirmed = None, self.passes.unconfirmed

    def run_eval(self, env_steps):
        super().run_eval(env_steps)  # never stops: the protocol's flags turn dqn.py's early stop off
        mean = self.evals[-1]["mean"]
        confirmation = None if self.passed else self.passes.holds(env_steps, mean)
        if confirmation is not None:
            self.passed = (self.evals[-1], confirmation)
        if self.on_eval:
            self.on_eval(env_steps, mean)
        return confirmation is not None and not self.to_budget


def judged_hooks(agent, env, args, on_eval=None, reward_fn=None, to_budget=False, task=CARTPOLE):
    """TrainingHooks for a judged run: JudgedEvaluator's evaluations, nothing printed."""
    evaluator = JudgedEvaluator(agent, args, on_eval, reward_fn, to_budget, task)
    return TrainingHooks(agent, env, args, log=None, reward_fn=reward_fn, evaluator=evaluator)


def judge(
    flags, seed, budget=None, on_eval=None, to_budget=False, value_estimates=False, env_id="CartPole-v1", on_build=None
):
    """Train dqn.py with flags on env_id's task, one seed, under the protocol; return what the judge records.

    on_eval(env_steps, mean), if given, hears every periodic evaluation; raising from it
    (e.g. optuna.TrialPruned) abandons the run. to_budget: train on after solving, to the
    budget (the solve and its confirmation are the same, since evaluating changes nothing
    in training); value_estimates: each evaluation also records q_estimate and true_return.
    budget: the task's own where None. on_build(agent), if given, sees the fresh agent before it trains.
    """
    task = TASKS[env_id]
    budget = budget or task.budget
    args = parse_args([str(f) for f in protocol_flags(flags, seed, budget, value_estimates, task)])
    start = time.perf_counter()
    env, agent = build(args)
    if on_build:
        on_build(agent)
    reward_fn = REWARDS[args.reward]
    hooks = judged_hooks(agent, env, args, on_eval, reward_fn, to_budget, task)
    records = dqn.train(agent, env, args.episodes, args.max_episode_steps, reward_fn, seed, None, hooks)
    env.close()
    judged = hooks.evaluator
    return dict(
        seed=seed,
        solved_at=judged.passed[0]["env_steps"] if judged.passed else None,
        confirm_mean=judged.passed[1] if judged.passed else None,
        unconfirmed=judged.unconfirmed,
        env_steps=records[-1]["env_steps"] if records else 0,
        wall_s=time.perf_counter() - start,
        evals=[tuple(e[k] for k in EVAL_COLUMNS if k in e) for e in judged.evals],
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
    """in_pool's work for judge(): task is (flags, seed, budget, env_id)."""
    flags, seed, budget, env_id = task
    return judge(flags, seed, budget, env_id=env_id)


def describe(result):
    """One line for a judged seed."""
    r = result
    misses = f", {len(r['unconfirmed'])} pass(es) not confirmed" if r.get("unconfirmed") else ""
    return f"seed {r['seed']}: solved at {r['solved_at']}, confirmed {r['confirm_mean']}{misses}, {r['wall_s']:.1f} s"


def seed_list(text):
    """'0-9' or '0,3,5' -> a list of ints."""
    if "-" in text:
        first, last = map(int, text.split("-"))
        return list(range(first, last + 1))
    return [int(s) for s in text.split(",")]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=seed_list, default=list(REPORT_SEEDS))
    p.add_argument("--env", choices=list(TASKS), default="CartPole-v1", help="the task (beyond/tasks.py)")
    p.add_argument("--budget", type=int, default=None, help="env steps per seed (default: the task's)")
    p.add_argument("--jobs", type=int, default=os.cpu_count(), help="seeds at a time, one worker process each")
    p.add_argument("flags", nargs=argparse.REMAINDER, help="after --: dqn.py flags")
    args = p.parse_args()
    flags = args.flags[1:] if args.flags[:1] == ["--"] else args.flags
    for r in in_pool(judge_task, [(flags, seed, args.budget, args.env) for seed in args.seeds], args.jobs):
        print(describe(r), flush=True)


if __name__ == "__main__":
    main()
