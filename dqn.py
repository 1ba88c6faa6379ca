"""Deep Q-Network on CartPole, a runnable port of "Pytorch Note51 Deep Q Networks".

The blog (a Chinese PyTorch note) trains a DQN with an eval net, a target net and a replay
memory on unwrapped CartPole with a shaped reward. This file is that blog and nothing else,
in its order and with its names, on today's torch and gymnasium; the command line and all
the extras live in the package beyond/. docs/differences.md lists every change to the blog.

    python dqn.py            # train 300 episodes, plot, then watch (or record) the agent
    python dqn.py --pixels   # beyond the blog: learn from screen images (beyond/pixels.py)
    python dqn.py --help     # every flag
"""

# %% Imports ----------------------------------------------------------------------------
import functools
import math
import os
import sys
import time
import warnings
from collections import namedtuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)  # tensors this small gain nothing from threads, only hand-off cost (docs/performance.md)

# %% Hyperparameters --------------------------------------------------------------------
# The blog's values. DQN(**overrides) and the CLI flags change them.
hyperparameters = dict(
    batch_size=32,
    lr=0.01,
    # The blog's epsilon is the probability of acting GREEDILY, the reverse of the usual
    # epsilon-greedy convention: 0.9 means "exploit 90% of the time, explore 10%".
    epsilon=0.9,
    gamma=0.9,
    target_replace_iter=100,  # copy eval_net into target_net every this many learn steps
    memory_capacity=2000,
    # Beyond the blog (the fixes the README lists under "Going further"); these defaults keep the blog's behaviour.
    hidden=50,
    learning_starts=None,  # learn once more than this many transitions were stored; None = memory_capacity
    train_every=1,  # one learn() per this many env steps
    double=False,
    terminal_mask=False,
    huber=False,
    grad_clip=None,
)

# %% Environment ------------------------------------------------------------------------
# CartPole through gymnasium (gym's maintained successor), unwrapped as in the blog. Unwrapped means no
# 200-step time limit, so the pole can stay up forever once the agent is good: train() caps every episode.
ENV_ID = "CartPole-v0"
MAX_EPISODE_STEPS = 10_000


def make_env(env_id=ENV_ID, unwrapped=True, render_mode=None):
    """Make a gymnasium env; unwrapped (the blog's choice) drops the time limit."""
    with warnings.catch_warnings():  # v0 is "out of date", but it is the blog's env
        warnings.filterwarnings("ignore", message=".*out of date", category=DeprecationWarning)
        env = gym.make(env_id, render_mode=render_mode)
    return env.unwrapped if unwrapped else env


# %% q_net ------------------------------------------------------------------------------
# State in, one value per action out. The network plays the role of the Q table.
class q_net(nn.Module):
    """Linear(n_states, hidden) -> ReLU -> Linear(hidden, n_actions), weights ~ N(0, 0.1)."""

    def __init__(self, n_states, n_actions, hidden=50):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(n_states, hidden), nn.ReLU(), nn.Linear(hidden, n_actions))
        nn.init.normal_(self.fc[0].weight, std=0.1)
        nn.init.normal_(self.fc[2].weight, std=0.1)

    def forward(self, x):
        """Q(s, a) for every action a: shape (..., n_actions)."""
        return self.fc(x)

    def backprop(self, x, hidden, action, d_q):
        """Set every weight's .grad from dloss/dQ(s, a) by the chain rule, as loss.backward() would (tests/ check);
        without autograd's graph bookkeeping, which is most of a learn step's time for a net this small."""
        first, second = self.fc[0], self.fc[2]
        d_out = torch.zeros(len(x), second.out_features).scatter_(1, action, d_q)  # only Q(s, a) is in the loss
        second.weight.grad, second.bias.grad = d_out.T @ hidden, d_out.sum(0)
        d_hidden = (d_out @ second.weight) * (hidden > 0)  # ReLU lets gradient through where it was on
        first.weight.grad, first.bias.grad = d_hidden.T @ x, d_hidden.sum(0)


# %% Replay memory ----------------------------------------------------------------------
# What update() learns from, by name: the blog's memory fills s, a, r, s_ and terminated;
# n-step returns add each row's discount, prioritized replay its weights and rows.
Batch = namedtuple("Batch", "s a r s_ terminated discount weights rows", defaults=(None,) * 3)


# Rows drawn at random from many past episodes, not the last steps in order: consecutive ones are alike.
class ReplayMemory:
    """The blog's ring buffer: one float32 row [s, a, r, s_] per transition, the oldest overwritten."""

    def __init__(self, capacity, n_states):
        self.capacity, self.n_states = capacity, n_states
        self.counter = 0  # transitions stored so far
        self.rows = self.make_rows()
        self.terminated = np.zeros((capacity, 1), dtype=np.float32)  # for --terminal-mask

    def make_rows(self):
        """float32 rows, like the observations and the net: a sampled batch goes to torch without a copy."""
        return np.zeros((self.capacity, self.n_states * 2 + 2), dtype=np.float32)

    def store(self, s, a, r, s_, terminated=False, truncated=False):
        """Write the transition over the oldest row (terminated, truncated: see DQN.store_transition)."""
        self.write(self.counter % self.capacity, s, a, r, s_, terminated)
        self.counter += 1

    def write(self, index, s, a, r, s_, terminated):
        """Put one transition into row index."""
        row, n = self.rows[index], self.n_states
        row[:n], row[n], row[n + 1], row[n + 2 :] = s, a, r, s_
        self.terminated[index] = terminated

    def sample(self, batch_size, rng):
        """batch_size rows drawn uniformly with replacement, as a Batch."""
        return self.batch_at(rng.integers(min(self.counter, self.capacity), size=batch_size))

    def batch_at(self, index):
        """Rows index as a Batch."""
        b_memory, n = self.rows[index], self.n_states  # numpy indexing: cheaper than torch's
        return Batch(
            torch.from_numpy(b_memory[:, :n]),
            torch.from_numpy(b_memory[:, n : n + 1].astype(np.int64)),
            torch.from_numpy(b_memory[:, n + 1 : n + 2]),
            torch.from_numpy(b_memory[:, n + 2 :]),
            torch.from_numpy(self.terminated[index]),
        )


# %% DQN --------------------------------------------------------------------------------
# eval_net learns every step; target_net is a copy that lags target_replace_iter learn steps behind. Bootstrapping
# from a frozen copy keeps the target from moving with every update, which makes Q-learning stable enough.
class DQN:
    """The blog's agent: replay memory, eval and target nets, Adam on an MSE loss.

    A subclass changes the network (make_net), the memory (make_memory) or the update itself (update).
    """

    memory_class = ReplayMemory  # beyond/agents.py mixes an extension's part of the memory into it

    def __init__(self, n_states, n_actions, seed=None, **overrides):
        unknown = set(overrides) - set(hyperparameters)
        if unknown:
            raise TypeError(f"unknown hyperparameter(s): {', '.join(sorted(unknown))}")
        self.__dict__.update({**hyperparameters, **overrides})
        if self.learning_starts is None:
            self.learning_starts = self.memory_capacity
        self.n_states, self.n_actions = n_states, n_actions
        self.rng = np.random.default_rng(seed)  # exploration and replay sampling
        if seed is not None:
            torch.manual_seed(seed)  # the nets' initial weights
        self.eval_net, self.target_net = self.make_net(), self.make_net()
        self.target_net.load_state_dict(self.eval_net.state_dict())
        self.learn_step_counter = 0
        self.memory = self.make_memory()
        # fused=True runs Adam's whole update in one kernel instead of ~10 small ops.
        self.optimizer = torch.optim.Adam(self.eval_net.parameters(), lr=self.lr, fused=True)

    def make_net(self):
        """A fresh q_net; called twice, for eval_net and target_net."""
        return q_net(self.n_states, self.n_actions, self.hidden)

    def make_memory(self, **options):
        """The replay memory; options: what an extension's part of it takes."""
        return self.memory_class(self.memory_capacity, self.n_states, **options)

    def choose_action(self, s):
        """Greedy (argmax Q) with probability epsilon, else a uniform random action."""
        if self.rng.random() < self.epsilon:
            return self.greedy_action(s)
        return int(self.rng.integers(self.n_actions))

    def greedy_action(self, s):
        """argmax_a Q(s, a) by eval_net, as a plain int (what gymnasium's step() expects)."""
        # q_net.forward for one state, in numpy: for a single state, torch's per-call cost would dominate
        w1, b1, w2, b2 = self.eval_weights
        return int(np.argmax(w2 @ np.maximum(w1 @ s + b1, 0) + b2))

    @functools.cached_property
    def eval_weights(self):
        """numpy views of eval_net's weights: Adam and load_state_dict update them in place."""
        return [p.detach().numpy() for p in self.eval_net.parameters()]

    def store_transition(self, s, a, r, s_, terminated=False, truncated=False):
        """Remember the transition in the replay memory.

        terminated: the episode ended at s_, so s_ has no future (--terminal-mask uses it).
        truncated: the episode was cut off at s_ (a time limit); it ends but s_ has a future.
        """
        self.memory.store(s, a, r, s_, terminated, truncated)

    def td_target(self, batch):
        """r + gamma * max_a' Q_target(s_, a'), which Q(s, a) is pulled towards (a batch's discount replaces gamma)."""
        q_next = self.target_net(batch.s_)
        if self.double:  # Double DQN: eval_net picks a', target_net values it
            q_next = q_next.gather(1, self.eval_net(batch.s_).argmax(1, keepdim=True))
        else:
            q_next = q_next.max(1, keepdim=True).values
        if self.terminal_mask:  # a terminated state has no future to bootstrap from
            q_next = q_next * (1 - batch.terminated)
        return batch.r + (self.gamma if batch.discount is None else batch.discount) * q_next

    def learn(self):
        """One Q-learning step on a batch sampled from memory; returns the loss."""
        if self.learn_step_counter % self.target_replace_iter == 0:
            self.target_net.load_state_dict(self.eval_net.state_dict())
        self.learn_step_counter += 1
        loss, _ = self.update(self.memory.sample(self.batch_size, self.rng))
        return loss

    def update(self, batch):
        """Pull Q(s, a) towards the TD target by one Adam step; return the loss and TD errors."""
        # Gradients are written out by hand below, so autograd's bookkeeping is switched off.
        with torch.inference_mode():
            q_target = self.td_target(batch)
            first, second = self.eval_net.fc[0], self.eval_net.fc[2]
            hidden = torch.relu(first(batch.s))
            q_eval = second(hidden).gather(1, batch.a)  # Q(s, a) of the actions taken
            td_error = q_eval - q_target
            if self.huber:  # Smooth L1: quadratic near zero, linear past |error| = 1
                losses = nn.functional.smooth_l1_loss(q_eval, q_target, reduction="none")
                d_q = td_error.clamp(-1, 1) / self.batch_size
            else:  # the blog's MSE: loss = mean(td_error^2), so dloss/dQ = 2 td_error / batch
                losses, d_q = td_error.square(), td_error * (2 / self.batch_size)
            if batch.weights is not None:  # prioritized replay: each row's share of the loss scaled by its weight
                losses, d_q = losses * batch.weights, d_q * batch.weights
            loss = losses.mean()
            self.eval_net.backprop(batch.s, hidden, batch.a, d_q)  # what loss.backward() would do
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.eval_net.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.item(), td_error


# %% Shaped reward ----------------------------------------------------------------------
# CartPole pays +1 every step whether the pole is nearly falling or not. The blog instead pays for keeping the
# cart near the centre (r1) and the pole upright (r2): which of two surviving states is better, a denser signal.
def shaped_reward(env, s_, env_reward=None):
    """The blog's r1 + r2 from the next state; env_reward is ignored."""
    x, x_dot, theta, theta_dot = s_
    base = env.unwrapped
    r1 = (base.x_threshold - abs(x)) / base.x_threshold - 0.8
    r2 = (base.theta_threshold_radians - abs(theta)) / base.theta_threshold_radians - 0.5
    return float(r1 + r2)


# %% Training loop ----------------------------------------------------------------------
# The first ~200 episodes only fill the memory (nothing is learned until it holds more than memory_capacity
# transitions), which is why the blog's printout starts near episode 200. After that: one learn() per env step.
def train(
    agent,
    env,
    episodes=300,
    max_episode_steps=MAX_EPISODE_STEPS,
    reward_fn=shaped_reward,
    seed=None,
    log=print,
    hooks=None,
    resume=None,
):
    """Train agent on env; return one dict per episode (steps, reward, loss, ...).

    hooks (optional, see Hooks below) lets the extras watch the loop without living in it.
    resume (optional, beyond the blog): (records, env_steps, unfinished) of a stopped run,
    to carry on from; a record of an episode cut short holds its "unfinished" state.
    """
    hooks = hooks or Hooks()
    env.action_space.seed(seed)
    records, env_steps, unfinished = resume or ([], 0, None)
    start = time.perf_counter() - (records[-1]["wall_s"] if records else 0.0)  # a resumed run's clock carries on
    for i_episode in range(len(records), episodes):
        if unfinished:  # the episode a stopped run was in the middle of: no reset
            s, reward, loss_sum, learn_steps, first_step = unfinished
            unfinished = None
        else:
            s, _ = env.reset(seed=seed if i_episode == 0 else None)
            reward, loss_sum, learn_steps, first_step = 0.0, 0.0, 0, 1
        for step in range(first_step, max_episode_steps + 1):
            hooks.before_step(env_steps)
            a = agent.choose_action(s)
            s_, r, terminated, truncated, info = env.step(a)
            r = reward_fn(env, s_, r)
            agent.store_transition(s, a, r, s_, terminated, truncated or step == max_episode_steps)
            reward += r
            env_steps += info.get("frames", 1)  # an env that holds each action for k frames says so
            if agent.memory.counter > agent.learning_starts and agent.memory.counter % agent.train_every == 0:
                loss_sum += agent.learn()
                learn_steps += 1
            if terminated or truncated or hooks.stop:
                break
            s = s_
        loss = loss_sum / learn_steps if learn_steps else math.nan
        records.append(dict(episode=i_episode, steps=step, reward=reward, epsilon=agent.epsilon, loss=loss))
        records[-1].update(learning=learn_steps > 0, env_steps=env_steps, wall_s=time.perf_counter() - start)
        if not (terminated or truncated or step == max_episode_steps):  # stopped mid-episode: what resuming needs
            records[-1]["unfinished"] = (s_, reward, loss_sum, learn_steps, step + 1)
        if learn_steps and log:
            log(f"Ep: {i_episode} | reward: {reward:.3f} | steps: {step}")
        hooks.after_episode(records[-1])
        if hooks.stop:
            break
    return records


class Hooks:
    """Where the extras plug into train(): all no-ops here, overridden beyond the blog."""

    stop = False  # set True to end training at the next step boundary

    def before_step(self, env_steps):
        """Called before every env step with the number of steps taken so far."""

    def after_episode(self, record):
        """Called with each episode's record as soon as the episode ends."""


# %% Plot -------------------------------------------------------------------------------
# The blog plots the episode rewards; the steps panel shows how long the pole stayed up, easier to read.
def plot(records, evals=()):
    """The reward and steps of each episode (and greedy evals), as a matplotlib figure."""
    import matplotlib

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or "ipykernel" in sys.modules):
        matplotlib.use("Agg")  # no screen and no notebook: draw off-screen, with no warning about displays
    import matplotlib.pyplot as plt

    learned = [r for r in records if r["learning"]] or records
    episodes = [r["episode"] for r in learned]
    fig, axes = plt.subplots(3 if len(evals) > 1 else 2, 1, figsize=(8, 7.8 if len(evals) > 1 else 5.2))
    axes[0].plot(episodes, [r["reward"] for r in learned])
    axes[0].set_ylabel("episode reward")
    title = "DQN on CartPole: the episodes since learning started"
    if evals:
        title += f"\nlast greedy evaluation: {evals[-1]['mean']:.1f} (mean return)"
    axes[0].set_title(title)
    axes[1].plot(episodes, [r["steps"] for r in learned], color="tab:orange")
    axes[1].set_ylabel("steps (pole up)")
    axes[1].set_xlabel("episode")
    if len(evals) > 1:  # a learning curve needs more than the final evaluation
        periodic = [e for e in evals if not e.get("final")]
        axes[2].plot([e["env_steps"] for e in periodic], [e["mean"] for e in periodic], "o-", color="tab:green")
        axes[2].plot(evals[-1]["env_steps"], evals[-1]["mean"], "*", ms=12, color="tab:green")  # the saved weights
        axes[2].set_ylabel("greedy eval return")
        axes[2].set_xlabel("env steps")
    fig.tight_layout()
    return fig


# %% Command line -----------------------------------------------------------------------
if __name__ == "__main__":  # the command line lives beyond the blog
    from beyond.cli import main

    raise SystemExit(main())
