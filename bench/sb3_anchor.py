"""The same-machine anchor: Stable-Baselines3's DQN with the rl-zoo's CartPole-v1 values, under the judge.

rl-zoo tunes SB3's DQN for 50,000 env steps on CartPole-v1 (hyperparams/dqn.yml). Here it
runs with exactly those values, and bench/judge.py's protocol: a greedy evaluation of its
own Q-network (20 episodes, the same episode seeds as dqn.py's) every 1,000 env steps,
each mean >= 475 confirmed on 100 fresh episodes, and a stop at the first pass that
confirms. SB3 is needed only
here: pip install -r bench/requirements.txt.

    python bench/sb3_anchor.py --seeds 0-2
"""

import argparse
import time

import gymnasium as gym
import torch
from judge import EVAL_EPISODES, EVAL_EVERY, SOLVED, confirm, describe, seed_list

from beyond.evaluation import eval_seed, evaluate

ZOO = dict(  # rl-baselines3-zoo, hyperparams/dqn.yml, CartPole-v1
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
)
ZOO_STEPS = 50_000


class GreedyQ:
    """An SB3 DQN seen as the judge sees dqn.py's agents: greedy_action(s) = argmax of its Q-network."""

    def __init__(self, model):
        self.q_net = model.policy.q_net

    def greedy_action(self, s):
        with torch.no_grad():
            return int(self.q_net(torch.as_tensor(s)[None]).argmax())


def judge_sb3(seed):
    """Train SB3's DQN with the zoo's values on one seed under the judge; the same dict as judge.judge."""
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(1)
    start = time.perf_counter()
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), seed=seed, device="cpu", **ZOO)
    agent, evals, solved, unconfirmed = GreedyQ(model), [], [], []

    class Judge(BaseCallback):
        def _on_step(self):
            if self.num_timesteps % EVAL_EVERY:
                return True
            mean = evaluate(agent, EVAL_EPISODES, "CartPole-v1", seed=eval_seed(seed))["mean"]
            evals.append((self.num_timesteps, mean))
            if mean < SOLVED:
                return True
            confirmation = confirm(agent, seed, len(unconfirmed))
            if confirmation < SOLVED:
                unconfirmed.append((self.num_timesteps, mean, confirmation))
                return True
            solved.append((self.num_timesteps, confirmation))
            return False  # stops learn()

    model.learn(ZOO_STEPS, callback=Judge())  # the zoo's budget: exploration_fraction is a fraction of it
    return dict(
        seed=seed,
        solved_at=solved[0][0] if solved else None,
        confirm_mean=solved[0][1] if solved else None,
        unconfirmed=unconfirmed,
        env_steps=model.num_timesteps,
        wall_s=time.perf_counter() - start,
        evals=evals,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=seed_list, default=[0])
    args = p.parse_args()
    for seed in args.seeds:
        r = judge_sb3(seed)
        print(describe(r), flush=True)


if __name__ == "__main__":
    main()
