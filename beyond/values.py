"""What the net believes against what it gets: value estimates checked at each greedy evaluation.

eval_net's max_a Q(s, a) is its estimate of the discounted return from s. The greedy policy
and CartPole are deterministic, so the true discounted return of that policy from s can be
measured by playing on: an evaluation episode continues past its time limit until the
discount has shrunk below TAIL_WEIGHT, and one backward pass over its rewards gives every
visited state's return. The gap between the two is what Double DQN's paper calls
overestimation (docs/why-dqn-works.md). Without --terminal-mask the net bootstraps
through a termination while the truth ends there, so part of that gap is the missing mask.
"""

import math

import numpy as np
import torch

from beyond.averaged import policy_net

TAIL_WEIGHT = 1e-3  # play on until gamma^k falls below this: later rewards hardly move the return
MAX_TAIL_STEPS = 10_000  # gamma = 1 has no tail short enough; cap it


def tail_steps(gamma):
    """Steps to play past an episode's limit so that gamma^k < TAIL_WEIGHT (66 at 0.9, 688 at 0.99)."""
    if gamma <= 0:
        return 0
    if gamma >= 1:
        return MAX_TAIL_STEPS
    return min(math.floor(math.log(TAIL_WEIGHT) / math.log(gamma)) + 1, MAX_TAIL_STEPS)


def discounted_returns(rewards, gamma):
    """G_t = r_t + gamma * G_{t+1} for every t, G after the last reward being 0 (float64)."""
    returns, future = np.zeros(len(rewards)), 0.0
    for t in range(len(rewards) - 1, -1, -1):
        future = rewards[t] + gamma * future
        returns[t] = future
    return returns


def max_q(agent, states, chunk=256):
    """max_a Q(s, a) by the net the agent acts with (eval_net, or its average) for each of states."""
    net = policy_net(agent)
    device = next(net.parameters()).device
    states = np.asarray(states)
    if states.dtype != np.uint8:
        states = states.astype(np.float32)
    with torch.inference_mode():
        parts = [
            net(torch.from_numpy(states[i : i + chunk]).to(device)).max(1).values for i in range(0, len(states), chunk)
        ]
    return torch.cat(parts).cpu().double().numpy()


class ValueCheck:
    """Collects one evaluation's visited states and learning rewards; then the two means.

    reward_fn(env, s_, env_reward) is the reward the run learns from (shaped or the env's),
    gamma its discount. The evaluation calls start_episode, step for each action inside
    the episode, play_on after it, and finally result().
    """

    def __init__(self, reward_fn, gamma):
        self.reward_fn, self.gamma = reward_fn, gamma
        self.states, self.returns = [], []

    def start_episode(self):
        self.episode_states, self.episode_rewards = [], []

    def step(self, env, s, s_, env_reward):
        """One step of the evaluation episode, from s: s counts as visited."""
        self.episode_states.append(s)
        self.episode_rewards.append(self.reward_fn(env, s_, env_reward))

    def play_on(self, env, agent, s, terminated):
        """Past the episode's end: keep acting greedily until the discount is negligible or the pole falls."""
        for _ in range(0 if terminated else tail_steps(self.gamma)):
            s_, r, terminated, _, _ = env.step(agent.greedy_action(s))  # a time limit's truncation is ignored
            self.episode_rewards.append(self.reward_fn(env, s_, r))
            if terminated:
                break
            s = s_
        visited = len(self.episode_states)
        self.returns.append(discounted_returns(self.episode_rewards, self.gamma)[:visited])
        self.states.extend(self.episode_states)

    def result(self, agent):
        """q_estimate and true_return: means over every state the evaluation visited."""
        return dict(
            q_estimate=float(max_q(agent, self.states).mean()),
            true_return=float(np.concatenate(self.returns).mean()),
        )


VALUE_LABELS = dict(
    believes="what the net believes",
    gets="what it gets",
    x="env steps",
    y="discounted shaped return",
)


def add_value_panel(figure, evals):
    """Append a panel to the reward plot: the net's value estimate and the true return, per evaluation.

    Like the plot's own evaluation panel, it needs two evaluations or more to draw lines;
    a run with only the final one prints the two numbers instead.
    """
    checked = [e for e in evals if "q_estimate" in e]
    if len(checked) < 2:
        return figure
    ax = draw_values(append_panel(figure), checked, {**VALUE_LABELS, "y": "discounted return"})
    ax.legend(fontsize=8, loc="best")
    figure.tight_layout()
    return figure


def append_panel(figure):
    """A new panel below figure's, the figure taller by one panel's height; returns its axes."""
    from matplotlib.gridspec import GridSpec

    axes = figure.axes
    grid = GridSpec(len(axes) + 1, 1, figure=figure)
    for i, ax in enumerate(axes):
        ax.set_subplotspec(grid[i])
    width, height = figure.get_size_inches()
    figure.set_size_inches(width, height * (len(axes) + 1) / len(axes))
    return figure.add_subplot(grid[len(axes)])


def value_figure(values, labels=None):
    """The net's value estimate against the true return, one point per copy of eval_net.

    values: dicts with env_steps, q_estimate and true_return. labels: VALUE_LABELS's words,
    for a notebook in another language.
    """
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(8, 3))
    draw_values(ax, values, {**VALUE_LABELS, **(labels or {})}).legend()
    figure.tight_layout()  # without it the x label falls below a figure this short
    return figure


def draw_values(ax, values, labels):
    """On ax, the net's estimate (red) and the true return (blue) of each of values against env steps."""
    steps = [v["env_steps"] for v in values]
    ax.plot(steps, [v["q_estimate"] for v in values], "o-", color="tab:red", label=labels["believes"])
    ax.plot(steps, [v["true_return"] for v in values], "o-", color="tab:blue", label=labels["gets"])
    ax.set_xlabel(labels["x"])
    ax.set_ylabel(labels["y"])
    return ax
