"""Does an average of eval_net's recent weights play better than eval_net itself? One training run
per seed, judged twice: the greedy policy of eval_net (what the judge counts) and, on the same run
at the same evaluations, the greedy policy of an exponential moving average of eval_net's weights
(w_avg += tau (w - w_avg) after each learn step; 1/tau learn steps is its memory). Training is
the same either way: the averages only watch it.

    python bench/averaged_policy.py --env LunarLander-v3 --seeds 1010-1019 --taus 0.001,0.0002 --budget 100000

Each seed trains to the budget; a policy is solved at its first evaluation that passes and whose
100 fresh confirmation episodes hold, as in the judge. One JSON line per seed in --out; seeds
already there are skipped, so a stopped run resumes.
"""

import argparse
import copy
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.judge import in_pool, judge, seed_list  # noqa: E402
from beyond.averaged import move_towards  # noqa: E402
from beyond.evaluation import Confirmation, confirm_seed, eval_seed, evaluate  # noqa: E402
from beyond.flags import parse_args  # noqa: E402
from beyond.tasks import TASKS  # noqa: E402

# the averages watch eval_net, so the preset's own average is off
DEFAULT_FLAGS = ["--preset", "tuned", "--averaged-policy", "0"]


class WatchingAverage:
    """A copy of the agent whose eval_net follows the live one's weights as --averaged-policy's average does."""

    def __init__(self, agent, tau, task, seed):
        self.live, self.tau, self.task, self.seed = agent, tau, task, seed
        self.copy = copy.deepcopy(agent)
        self.passes = Confirmation(task.threshold, self.confirm)
        self.solved_at, self.confirm_mean, self.evals = None, None, []

    def follow(self):
        move_towards(self.copy.eval_net, self.live.eval_net, self.tau)

    def confirm(self, attempt):
        episodes, env_id = self.task.confirm_episodes, self.task.env_id
        return evaluate(self.copy, episodes, env_id, seed=confirm_seed(self.seed, attempt))["mean"]

    def result(self):
        unconfirmed = self.passes.unconfirmed
        return dict(solved_at=self.solved_at, confirm_mean=self.confirm_mean, unconfirmed=unconfirmed, evals=self.evals)

    def evaluate(self, env_steps):
        mean = evaluate(self.copy, self.task.eval_episodes, self.task.env_id, seed=eval_seed(self.seed))["mean"]
        self.evals.append((env_steps, mean))
        if self.solved_at is None:
            confirmation = self.passes.holds(env_steps, mean)
            if confirmation is not None:
                self.solved_at, self.confirm_mean = env_steps, confirmation


def judge_seed(task):
    """Train one seed to the budget; eval_net's judged result plus each average's."""
    flags, seed, budget, env_id, taus = task
    averages = []

    def on_build(agent):
        averages.extend(WatchingAverage(agent, tau, TASKS[env_id], seed) for tau in taus)
        learn = agent.learn

        def learn_and_follow():
            loss = learn()
            for average in averages:
                average.follow()
            return loss

        agent.learn = learn_and_follow

    def on_eval(env_steps, mean):
        for average in averages:
            average.evaluate(env_steps)

    result = judge(flags, seed, budget, on_eval=on_eval, to_budget=True, env_id=env_id, on_build=on_build)
    result["averaged"] = {str(a.tau): a.result() for a in averages}
    return result


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--env", choices=list(TASKS), default="LunarLander-v3")
    p.add_argument("--seeds", type=seed_list, required=True)
    p.add_argument("--taus", default="0.001,0.0002", help="comma-separated averaging rates")
    p.add_argument("--budget", type=int, default=100_000)
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--out", type=Path, required=True, help="the JSON-lines file: one line per seed, resumed")
    p.add_argument(
        "flags", nargs=argparse.REMAINDER, help=f"after --: dqn.py flags (default: {' '.join(DEFAULT_FLAGS)})"
    )
    args = p.parse_args()
    flags = (args.flags[1:] if args.flags[:1] == ["--"] else args.flags) or DEFAULT_FLAGS
    if parse_args([*flags, "--env", args.env]).averaged_policy:
        p.error(
            "these flags already play an averaged policy; the averages here watch eval_net (add --averaged-policy 0)"
        )
    taus = [float(t) for t in args.taus.split(",")]
    done = {json.loads(line)["seed"] for line in args.out.read_text().splitlines()} if args.out.exists() else set()
    work = [(flags, seed, args.budget, args.env, taus) for seed in args.seeds if seed not in done]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for r in in_pool(judge_seed, work, args.jobs):
        with args.out.open("a") as f:
            f.write(json.dumps(r) + "\n")
        averaged = ", ".join(f"tau {tau}: {a['solved_at']}" for tau, a in r["averaged"].items())
        print(f"seed {r['seed']}: eval_net solved at {r['solved_at']}; {averaged}", flush=True)


if __name__ == "__main__":
    main()
