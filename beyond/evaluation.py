"""Greedy evaluation: how well an agent plays when it always takes its best action.

Scored on the standard CartPole-v1 (500-step limit, +1 a step) so that the number can be
compared with published results, unlike the shaped reward of the unwrapped training env.
"""

import numpy as np

import dqn
from beyond import pixels, tasks

EVAL_ENV_ID = "CartPole-v1"


def evaluate(agent, episodes=20, env_id=EVAL_ENV_ID, seed=0, max_episode_steps=dqn.MAX_EPISODE_STEPS, values=None):
    """Play agent.greedy_action on a fresh env_id; return mean, std and min of its own returns.

    values (a beyond.values.ValueCheck) also measures q_estimate and true_return: each
    episode then plays on past its end, which its return does not count.
    """
    env = pixels.env_maker(agent)(env_id, unwrapped=False)
    returns = []
    for i in range(episodes):
        s, _ = env.reset(seed=seed + i)
        total, terminated = 0.0, False
        if values:
            values.start_episode()
        for _ in range(max_episode_steps):
            s_, r, terminated, truncated, _ = env.step(agent.greedy_action(s))
            if values:
                values.step(env, s, s_, r)
            total, s = total + r, s_
            if terminated or truncated:
                break
        if values:
            values.play_on(env, agent, s, terminated)
        returns.append(total)
    env.close()
    returns = np.array(returns)
    result = dict(mean=float(returns.mean()), std=float(returns.std()), min=float(returns.min()))
    return dict(result, **values.result(agent)) if values else result


class Confirmation:
    """A pass solves only if the same weights reach the threshold again on fresh episodes.

    A 10- or 20-episode mean at the threshold is often a lucky draw. confirm(attempt) plays
    the attempt-th set of fresh episodes (confirm_seed) and returns their greedy mean;
    `unconfirmed` keeps (env_steps, eval mean, confirmation mean) of each pass that did not
    hold. dqn.py's --confirm-episodes, the judge and the SB3 anchor all decide by this.
    """

    def __init__(self, threshold, confirm, unconfirmed=None):
        self.threshold, self.confirm = threshold, confirm
        self.unconfirmed = [] if unconfirmed is None else unconfirmed

    def holds(self, env_steps, mean):
        """The confirmation's mean where an evaluation's mean passes and the pass holds, else None."""
        if mean < self.threshold:
            return None
        confirmation = self.confirm(len(self.unconfirmed))
        if confirmation >= self.threshold:
            return confirmation
        self.unconfirmed.append((env_steps, mean, confirmation))
        return None


def eval_env_id(env_id):
    """CartPole agents are judged on the standard v1 task; any other env on itself."""
    return EVAL_ENV_ID if tasks.is_cartpole(env_id) else env_id


def eval_seed(seed):
    """Evaluation episodes get their own seeds, apart from the training env's."""
    return 10_000 + (seed or 0)


def confirm_seed(seed, attempt=0):
    """Episode seeds for a run's attempt-th confirmation of a pass, apart from its periodic evaluations'."""
    return 1_000_000 * (attempt + 1) + 1000 * (seed or 0)
