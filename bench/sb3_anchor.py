"""The same-machine anchor: Stable-Baselines3's DQN with the rl-zoo's values for each task, under the judge.

rl-zoo tunes SB3's DQN for each env (hyperparams/dqn.yml): on CartPole-v1 for 50,000 env
steps. Here it runs with exactly those values, and bench/judge.py's protocol for the
task: a greedy evaluation of its own Q-network (the same cadence and episode seeds as
dqn.py's), each pass confirmed on fresh episodes, and a stop at the first pass that
confirms. Its exploration schedule is a fraction of the zoo's steps; where the task's
budget is longer, it trains on at its final epsilon. SB3 is needed only here: pip install
-r bench/requirements.txt.

    python bench/sb3_anchor.py --seeds 0-2
    python bench/sb3_anchor.py --env Acrobot-v1 --seeds 0-2
"""

import argparse
import time

import torch
from judge import confirm, describe, seed_list

from beyond.evaluation import Confirmation, eval_seed, evaluate
from beyond.tasks import TASKS, make_env

# rl-baselines3-zoo 2.9.2, hyperparams/dqn.yml (bench/rl_zoo3-2.9.2-dqn.yml; a test holds them equal):
# SB3's arguments for each env, and the env steps they were tuned for.
# rl-zoo gives Acrobot-v1 and LunarLander-v3 the same values
ZOO_ACROBOT_LUNAR = dict(
    learning_rate=6.3e-4,
    batch_size=128,
    buffer_size=50_000,
    learning_starts=0,
    gamma=0.99,
    target_update_interval=250,
    train_freq=4,
    gradient_steps=-1,
    exploration_fraction=0.12,
    exploration_final_eps=0.1,
    policy_kwargs=dict(net_arch=[256, 256]),
)
ZOO = {
    "CartPole-v1": dict(
        learning_rate=2.3e-3,
        batch_size=64,
        buffer_size=100_000,
        learning_starts=1000,
        gamma=0.99,
        target_update_interval=10,
        train_freq=256,
        gradient_steps=128,
        exploration_fraction=0.16,
        exploration_final_eps=0.04,
        policy_kwargs=dict(net_arch=[256, 256]),
    ),
    "Acrobot-v1": ZOO_ACROBOT_LUNAR,
    "MountainCar-v0": dict(
        learning_rate=4e-3,
        batch_size=128,
        buffer_size=10_000,
        learning_starts=1000,
        gamma=0.98,
        target_update_interval=600,
        train_freq=16,
        gradient_steps=8,
        exploration_fraction=0.2,
        exploration_final_eps=0.07,
        policy_kwargs=dict(net_arch=[256, 256]),
    ),
    "LunarLander-v3": ZOO_ACROBOT_LUNAR,
}
ZOO_STEPS = {"CartPole-v1": 50_000, "Acrobot-v1": 100_000, "MountainCar-v0": 120_000, "LunarLander-v3": 100_000}


class GreedyQ:
    """An SB3 DQN seen as the judge sees dqn.py's agents: greedy_action(s) = argmax of its Q-network."""

    def __init__(self, model):
        self.q_net = model.policy.q_net
        self.n_states = model.observation_space.shape[0]  # a state, not screens: evaluation makes its env from it

    def greedy_action(self, s):
        with torch.no_grad():
            return int(self.q_net(torch.as_tensor(s)[None]).argmax())


def judge_sb3(seed, env_id="CartPole-v1", budget=None):
    """Train SB3's DQN with the zoo's values on one seed under the judge; the same dict as judge.judge.

    budget: the task's where None, but never under the zoo's own steps on CartPole, the
    budget its values were tuned for.
    """
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    task = TASKS[env_id]
    budget = max(budget or task.budget, ZOO_STEPS[env_id] if env_id == "CartPole-v1" else 0)
    start = time.perf_counter()
    model = DQN("MlpPolicy", make_env(env_id, unwrapped=False), seed=seed, device="cpu", **ZOO[env_id])
    agent, evals, solved = GreedyQ(model), [], []
    passes = Confirmation(task.threshold, lambda attempt: confirm(agent, seed, attempt, task))

    class Judge(BaseCallback):
        def _on_step(self):
            if self.num_timesteps % task.eval_every:
                return True
            mean = evaluate(agent, task.eval_episodes, env_id, seed=eval_seed(seed))["mean"]
            evals.append((self.num_timesteps, mean))
            confirmation = passes.holds(self.num_timesteps, mean)
            if confirmation is None:
                return True
            solved.append((self.num_timesteps, confirmation))
            return False  # stops learn()

    callback = Judge()
    zoo_steps = min(ZOO_STEPS[env_id], budget)
    model.learn(zoo_steps, callback=callback)  # exploration_fraction is a fraction of the zoo's steps
    if not solved and budget > zoo_steps:
        model.learn(budget - zoo_steps, callback=callback, reset_num_timesteps=False)
    return dict(
        seed=seed,
        solved_at=solved[0][0] if solved else None,
        confirm_mean=solved[0][1] if solved else None,
        unconfirmed=passes.unconfirmed,
        env_steps=model.num_timesteps,
        wall_s=time.perf_counter() - start,
        evals=evals,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=seed_list, default=[0])
    p.add_argument("--env", choices=list(ZOO), default="CartPole-v1")
    args = p.parse_args()
    for seed in args.seeds:
        r = judge_sb3(seed, args.env)
        print(describe(r), flush=True)


if __name__ == "__main__":
    main()
