"""Deep Q-Network on CartPole, a runnable port of "Pytorch Note51 Deep Q Networks".

The blog (a Chinese PyTorch note) builds a DQN with an eval net, a target net and a
replay memory, and trains it on unwrapped CartPole with a shaped reward. This file keeps
its sections, order and names, on today's torch and gymnasium. Read it top to bottom
beside the blog; everything past the "beyond the blog" line is optional extras.
README.md, "What differs from the blog and why", lists every change.

    python dqn.py            # train 300 episodes, plot, then watch (or record) the agent
    python dqn.py --pixels   # beyond the blog: learn from screen images (dqn_pixels.py)
    python dqn.py --help     # every flag
"""
import math
import os
import sys
import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

import dqn_pixels  # beyond the blog: screen images as the state (--pixels)

# ---------------------------------------------------------------------------------------
# Hyperparameters: the blog's values. DQN(**overrides) and the CLI flags change them.
# ---------------------------------------------------------------------------------------
hyperparameters = dict(
    batch_size=32,
    lr=0.01,
    # The blog's epsilon is the probability of acting GREEDILY, the reverse of the usual
    # epsilon-greedy convention: 0.9 means "exploit 90% of the time, explore 10%".
    epsilon=0.9,
    gamma=0.9,
    target_replace_iter=100,  # copy eval_net into target_net every this many learn steps
    memory_capacity=2000,
    # Beyond the blog (the fixes the README lists under "Going further"); these defaults
    # keep the blog's behaviour.
    hidden=50,
    learning_starts=None,  # learn once the memory holds more than this; None = memory_capacity
    train_every=1,  # one learn() per this many env steps
    double=False,
    terminal_mask=False,
    huber=False,
    grad_clip=None,
)

# ---------------------------------------------------------------------------------------
# Environment: CartPole through gymnasium (gym's maintained successor), unwrapped as in
# the blog. Unwrapped means no 200-step time limit, so the pole can stay up forever once
# the agent is good: train() caps every episode at max_episode_steps for that reason.
# ---------------------------------------------------------------------------------------
ENV_ID = "CartPole-v0"
MAX_EPISODE_STEPS = 10_000
EVAL_ENV_ID = "CartPole-v1"  # greedy evaluation uses the standard task (see evaluate)


def make_env(env_id=ENV_ID, unwrapped=True, render_mode=None, pixels=False):
    """Make a gymnasium env; unwrapped (the blog's choice) drops the time limit.

    pixels=True (beyond the blog, dqn_pixels.py): observations are screen images instead.
    """
    if pixels:
        return dqn_pixels.pixel_env(make_env(env_id, unwrapped, render_mode="rgb_array"), render_mode)
    with warnings.catch_warnings():  # v0 is "out of date", but it is the blog's env
        warnings.filterwarnings("ignore", message=".*out of date", category=DeprecationWarning)
        env = gym.make(env_id, render_mode=render_mode)
    return env.unwrapped if unwrapped else env


# ---------------------------------------------------------------------------------------
# q_net: state in, one value per action out. The network plays the role of the Q table.
# ---------------------------------------------------------------------------------------
class q_net(nn.Module):
    """Linear(n_states, hidden) -> ReLU -> Linear(hidden, n_actions), weights ~ N(0, 0.1)."""

    def __init__(self, n_states, n_actions, hidden=50):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(n_states, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_actions),
        )
        nn.init.normal_(self.fc[0].weight, std=0.1)
        nn.init.normal_(self.fc[2].weight, std=0.1)

    def forward(self, x):
        """Q(s, a) for every action a: shape (..., n_actions)."""
        return self.fc(x)

    def backprop(self, x, hidden, action, d_q):
        """Set every weight's .grad from dloss/dQ(s, a): the chain rule, layer by layer.

        This is what loss.backward() computes (tests/ check they agree). Written out, it
        skips autograd's graph bookkeeping, which is most of a learn step's time for a
        net this small.
        """
        first, second = self.fc[0], self.fc[2]
        d_out = torch.zeros(len(x), second.out_features).scatter_(1, action, d_q)  # only Q(s, a) is in the loss
        second.weight.grad, second.bias.grad = d_out.T @ hidden, d_out.sum(0)
        d_hidden = (d_out @ second.weight) * (hidden > 0)  # ReLU lets gradient through where it was on
        first.weight.grad, first.bias.grad = d_hidden.T @ x, d_hidden.sum(0)


def make_q_net(n_states, n_actions, hidden):
    """The blog's q_net for a state vector; for a stack of screen images (--pixels), a CNN."""
    if isinstance(n_states, int):
        return q_net(n_states, n_actions, hidden)
    return dqn_pixels.conv_q_net(n_states, n_actions, hidden)


# ---------------------------------------------------------------------------------------
# DQN: eval_net learns every step; target_net is a copy that lags target_replace_iter
# learn steps behind. Bootstrapping from a frozen copy keeps the regression target from
# moving with every update, which is what makes the Q-learning update stable enough.
# ---------------------------------------------------------------------------------------
class DQN:
    """The blog's agent: replay memory, eval and target nets, Adam on an MSE loss."""

    def __init__(self, n_states, n_actions, seed=None, device="cpu", **overrides):
        unknown = set(overrides) - set(hyperparameters)
        if unknown:
            raise TypeError(f"unknown hyperparameter(s): {', '.join(sorted(unknown))}")
        self.__dict__.update({**hyperparameters, **overrides})
        if self.learning_starts is None:
            self.learning_starts = self.memory_capacity
        self.n_states, self.n_actions = n_states, n_actions
        self.pixels = not isinstance(n_states, int)  # n_states is an image stack's shape (--pixels)
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)  # exploration and replay sampling
        if seed is not None:
            torch.manual_seed(seed)  # the nets' initial weights

        self.eval_net = make_q_net(n_states, n_actions, self.hidden).to(self.device)
        self.target_net = make_q_net(n_states, n_actions, self.hidden).to(self.device)
        self.target_net.load_state_dict(self.eval_net.state_dict())
        if not self.pixels:
            self._eval_weights = [p.detach().numpy() for p in self.eval_net.parameters()]  # shared memory
        self.learn_step_counter = 0
        self.memory_counter = 0
        # One row per transition: [s, a, r, s_]. float32 like the observations and the
        # net, so a sampled batch goes to torch without a copy or a conversion.
        self.memory = np.zeros((self.memory_capacity, 2 if self.pixels else n_states * 2 + 2), dtype=np.float32)
        if self.pixels:  # images go to a uint8 memory of their own; the rows keep [a, r]
            self.memory_frames = dqn_pixels.FrameMemory(self.memory_capacity, n_states)
        self.memory_terminated = np.zeros((self.memory_capacity, 1), dtype=np.float32)  # for --terminal-mask
        # fused=True runs Adam's whole update in one kernel instead of ~10 small ops.
        self.optimizer = torch.optim.Adam(self.eval_net.parameters(), lr=self.lr, fused=True)

    def choose_action(self, s):
        """Greedy (argmax Q) with probability epsilon, else a uniform random action."""
        if self.rng.random() < self.epsilon:
            return self.greedy_action(s)
        return int(self.rng.integers(self.n_actions))

    def greedy_action(self, s):
        """argmax_a Q(s, a) by eval_net, as a plain int (what gymnasium's step() expects)."""
        if self.pixels:  # the CNN: one torch forward
            with torch.inference_mode():
                return int(self.eval_net(torch.from_numpy(s)[None].to(self.device)).argmax())
        # q_net.forward for one state, in numpy on views of eval_net's own weights (they
        # change as it learns): for a single state, torch's per-call cost would dominate.
        w1, b1, w2, b2 = self._eval_weights
        return int(np.argmax(w2 @ np.maximum(w1 @ s + b1, 0) + b2))

    def store_transition(self, s, a, r, s_, terminated=False):
        """Write [s, a, r, s_] into the ring buffer, overwriting the oldest row."""
        index = self.memory_counter % self.memory_capacity
        if self.pixels:  # s and s_ go to the frame memory; the row keeps [a, r]
            self.memory_frames.store(index, s, s_)
            self.memory[index] = a, r
        else:
            row, n = self.memory[index], self.n_states
            row[:n], row[n], row[n + 1], row[n + 2:] = s, a, r, s_
        self.memory_terminated[index] = terminated
        self.memory_counter += 1

    def sample_batch(self):
        """batch_size rows drawn uniformly with replacement, split into s, a, r, s_, terminated."""
        sample_index = self.rng.integers(min(self.memory_counter, self.memory_capacity), size=self.batch_size)
        b_memory, n = self.memory[sample_index], self.n_states  # numpy indexing: cheaper than torch's
        terminated = torch.from_numpy(self.memory_terminated[sample_index]) if self.terminal_mask else None
        if self.pixels:  # rows are [a, r]; s and s_ come from the frame memory
            b_s, b_s_ = self.memory_frames.sample(sample_index)
            return (b_s, torch.from_numpy(b_memory[:, :1].astype(np.int64)), torch.from_numpy(b_memory[:, 1:]),
                    b_s_, terminated)
        return (torch.from_numpy(b_memory[:, :n]), torch.from_numpy(b_memory[:, n:n + 1].astype(np.int64)),
                torch.from_numpy(b_memory[:, n + 1:n + 2]), torch.from_numpy(b_memory[:, n + 2:]), terminated)

    def td_target(self, b_r, b_s_, b_terminated=None):
        """r + gamma * max_a' Q_target(s_, a'): the value that Q(s, a) is pulled towards."""
        q_next = self.target_net(b_s_)
        if self.double:  # Double DQN: eval_net picks a', target_net values it
            q_next = q_next.gather(1, self.eval_net(b_s_).argmax(1, keepdim=True))
        else:
            q_next = q_next.max(1, keepdim=True).values
        if self.terminal_mask:  # a terminated state has no future to bootstrap from
            q_next = q_next * (1 - b_terminated)
        return b_r + self.gamma * q_next

    def learn(self):
        """One Q-learning step on a batch sampled uniformly (with replacement) from memory."""
        if self.learn_step_counter % self.target_replace_iter == 0:
            self.target_net.load_state_dict(self.eval_net.state_dict())
        self.learn_step_counter += 1

        b_s, b_a, b_r, b_s_, b_terminated = self.sample_batch()
        if self.pixels:  # the CNN: autograd sets (and clips) the gradients, see dqn_pixels.py
            loss = dqn_pixels.backprop_by_autograd(self, b_s, b_a, b_r, b_s_, b_terminated)
            self.optimizer.step()
            return loss
        # Gradients are written out by hand below, so autograd's bookkeeping is switched off.
        with torch.inference_mode():
            q_target = self.td_target(b_r, b_s_, b_terminated)
            first, second = self.eval_net.fc[0], self.eval_net.fc[2]
            hidden = torch.relu(first(b_s))
            q_eval = second(hidden).gather(1, b_a)  # Q(s, a) of the actions taken
            td_error = q_eval - q_target
            if self.huber:  # Smooth L1: quadratic near zero, linear past |error| = 1
                loss = nn.functional.smooth_l1_loss(q_eval, q_target)
                d_q = td_error.clamp(-1, 1) / self.batch_size
            else:  # the blog's MSE: loss = mean(td_error^2), so dloss/dQ = 2 td_error / batch
                loss, d_q = td_error.square().mean(), td_error * (2 / self.batch_size)
            self.eval_net.backprop(b_s, hidden, b_a, d_q)  # what loss.backward() would do
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.eval_net.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.item()


# ---------------------------------------------------------------------------------------
# Shaped reward: CartPole pays +1 every step whether the pole is nearly falling or not.
# The blog instead pays for keeping the cart near the centre (r1) and the pole upright
# (r2), a denser signal that tells the agent which of two surviving states is better.
# ---------------------------------------------------------------------------------------
def shaped_reward(env, s_, env_reward=None):
    """The blog's r1 + r2 from the next state; env_reward is ignored."""
    x, x_dot, theta, theta_dot = s_
    base = env.unwrapped
    r1 = (base.x_threshold - abs(x)) / base.x_threshold - 0.8
    r2 = (base.theta_threshold_radians - abs(theta)) / base.theta_threshold_radians - 0.5
    return float(r1 + r2)


def env_reward(env, s_, env_reward):
    """The environment's own reward (+1 a step on CartPole), for --reward env."""
    return float(env_reward)


# ---------------------------------------------------------------------------------------
# Training loop. The first ~200 episodes only fill the memory (nothing is learned until
# it holds more than memory_capacity transitions), which is why the blog's printout
# starts near episode 200. After that: one learn() per env step.
# ---------------------------------------------------------------------------------------
def train(agent, env, episodes=300, max_episode_steps=MAX_EPISODE_STEPS, reward_fn=shaped_reward,
          seed=None, log=print, hooks=None):
    """Train agent on env; return one dict per episode (steps, reward, loss, ...).

    hooks (optional, see Hooks below) lets the extras watch the loop without living in it.
    """
    hooks = hooks or Hooks()
    env.action_space.seed(seed)
    records, env_steps, start = [], 0, time.perf_counter()
    for i_episode in range(episodes):
        s, _ = env.reset(seed=seed if i_episode == 0 else None)
        reward, loss_sum, learn_steps = 0.0, 0.0, 0
        for step in range(1, max_episode_steps + 1):
            hooks.before_step(env_steps)
            a = agent.choose_action(s)
            s_, r, terminated, truncated, info = env.step(a)
            r = reward_fn(env, s_, r)
            agent.store_transition(s, a, r, s_, terminated)
            reward += r
            env_steps += info.get("frames", 1)  # --pixels holds each action for several frames
            if agent.memory_counter > agent.learning_starts and agent.memory_counter % agent.train_every == 0:
                loss_sum += agent.learn()
                learn_steps += 1
            if terminated or truncated or hooks.stop:
                break
            s = s_
        loss = loss_sum / learn_steps if learn_steps else math.nan
        records.append(dict(episode=i_episode, steps=step, reward=reward,
                            epsilon=agent.epsilon, loss=loss, learning=learn_steps > 0,
                            env_steps=env_steps, wall_s=time.perf_counter() - start))
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


# ---------------------------------------------------------------------------------------
# Plot: the blog plots the episode rewards; the steps panel shows how long the pole
# stayed up, which is easier to read than the shaped reward.
# ---------------------------------------------------------------------------------------
def plot(records, evals=()):
    """The reward and steps of each episode (and greedy evals), as a matplotlib figure."""
    import matplotlib

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        matplotlib.use("Agg")  # no screen: draw off-screen, with no warning about displays
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


# =======================================================================================
# ---- beyond the blog -----------------------------------------------------------------
# Everything below is optional: greedy evaluation, the known DQN fixes as flags, presets,
# and the command line. Checkpoints, video and validation live in dqn_support.py.
# =======================================================================================
def evaluate(agent, episodes=20, env_id=EVAL_ENV_ID, seed=0, max_episode_steps=MAX_EPISODE_STEPS):
    """Play the greedy policy on a fresh env_id; return mean, std and min of its own returns.

    The standard CartPole-v1 (500-step limit, +1 a step) makes the number comparable with
    published results, unlike the shaped reward of the unwrapped training env.
    """
    env = make_env(env_id, unwrapped=False, pixels=getattr(agent, "pixels", False))  # any greedy_action will do
    returns = []
    for i in range(episodes):
        s, _ = env.reset(seed=seed + i)
        total = 0.0
        for _ in range(max_episode_steps):
            s, r, terminated, truncated, _ = env.step(agent.greedy_action(s))
            total += r
            if terminated or truncated:
                break
        returns.append(total)
    env.close()
    returns = np.array(returns)
    return dict(mean=float(returns.mean()), std=float(returns.std()), min=float(returns.min()))


def linear_epsilon(start, end, steps):
    """The greedy probability rising linearly from start to end over steps env steps."""
    return lambda env_steps: start + (end - start) * min(env_steps / steps, 1.0)


# Presets: values chosen with bench/seeds.py (see README, "Going further").
PRESETS = {
    "blog": {},
    "tuned": dict(env="CartPole-v1", reward="env", terminal_mask=True, double=True, huber=True, grad_clip=10.0,
                  lr=3e-3, gamma=0.99, batch_size=64, hidden=128, memory_capacity=50_000, learning_starts=1000,
                  target_replace_iter=200, epsilon_start=0.0, epsilon_end=0.98, epsilon_steps=4000,
                  eval_every=1000, early_stop=475.0, episodes=100_000, max_env_steps=100_000),
    # --pixels: from screen images (dqn_pixels.py); README, "Learning from pixels"
    "pixels": dict(pixels=True, env="CartPole-v1", reward="env", terminal_mask=True, double=True, huber=True,
                   grad_clip=10.0, lr=1e-4, gamma=0.99, batch_size=32, hidden=256, memory_capacity=150_000,
                   learning_starts=1000, train_every=4, target_replace_iter=1000, epsilon_start=0.0,
                   epsilon_end=0.99, epsilon_steps=40_000, eval_every=20_000, eval_episodes=10, keep_best=True,
                   early_stop=475.0, episodes=100_000, max_env_steps=300_000),
}


def parse_args(argv=None):
    """Parse and validate the command line (a preset sets defaults; explicit flags win)."""
    from dqn_support import build_parser, parse_with_preset, validate_args

    return validate_args(parse_with_preset(build_parser(hyperparameters, PRESETS), PRESETS, argv), make_env, ENV_ID)


def n_states_of(env):
    """What DQN takes as n_states: the state's length, or a stack of images' whole shape (--pixels)."""
    shape = env.observation_space.shape
    return shape[0] if len(shape) == 1 else shape


def agent_overrides(args):
    """The DQN hyperparameters that the command line sets."""
    return {k: getattr(args, k) for k in hyperparameters}


def main(argv=None):
    """python dqn.py: train (or --play a checkpoint), save the run, then watch or record."""
    import dqn_support as support

    try:
        args = parse_args(argv)
        if args.play:
            return play(args)
        return train_and_save(args, support.make_run_dir(args))
    except support.UsageError as e:
        print(f"dqn.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while watching or showing: everything is saved by then
        print("interrupted", file=sys.stderr)
        return 130


def train_and_save(args, run_dir):
    """The whole run: train, evaluate, write the metrics, checkpoint and plot, then watch."""
    import dqn_support as support

    torch.set_num_threads(1)  # tensors this small gain nothing from threads, only hand-off cost
    log = (lambda *_: None) if args.quiet else print
    render = args.render and support.can_render(make_env, args.env, log)
    env = make_env(args.env, unwrapped=args.reward == "shaped", render_mode="human" if render else None,
                   pixels=args.pixels)
    agent = DQN(n_states_of(env), int(env.action_space.n), seed=args.seed, device=args.device, **agent_overrides(args))
    reward_fn = dqn_pixels.true_state_reward(REWARDS[args.reward]) if args.pixels else REWARDS[args.reward]
    schedule = None
    if args.epsilon_steps:
        schedule = linear_epsilon(args.epsilon_start, args.epsilon_end, args.epsilon_steps)
    hooks = support.TrainingHooks(agent, env, args, evaluate, schedule, log, render)
    start = time.perf_counter()
    with hooks.ctrl_c_stops_training():
        records = train(agent, env, args.episodes, args.max_episode_steps, reward_fn, args.seed, log, hooks)
    elapsed = time.perf_counter() - start
    env.close()
    env_steps = records[-1]["env_steps"] if records else 0
    print(f"trained {len(records)} episodes, {env_steps} env steps, {agent.learn_step_counter} learn steps "
          f"in {elapsed:.1f} s ({env_steps / max(elapsed, 1e-9):.0f} steps/s)")
    with support.ignore_ctrl_c():  # training is over: what it made gets saved, Ctrl-C or not
        hooks.choose_weights_and_evaluate(env_steps, trained=bool(records))
        paths = [support.save_metrics(records, hooks.evals, run_dir / "metrics.csv"),
                 support.save_evals(hooks.evals, run_dir / "evals.csv"),
                 support.save_checkpoint(agent, run_dir / "model.pt", args.env, args.reward, args.seed,
                                         len(records))]
        figure = plot(records, hooks.evals) if records else None
        if figure:
            paths.append(support.save_figure(figure, args.plot or run_dir / "rewards.png"))
    for path in paths:
        print(f"saved {path}")
    if hooks.interrupted:
        print("interrupted: saved the episodes trained so far", file=sys.stderr)
        return 130
    if hooks.diverged:
        return 1
    watch(agent, args, run_dir, args.env, args.reward)
    print(f"run folder: {run_dir}")
    if figure and not args.no_show and support.display_available() and not os.environ.get("CI"):
        import matplotlib.pyplot as plt

        plt.show()  # blocks until the window is closed
    return 0


def watch(agent, args, run_dir, env_id, reward):
    """Play the greedy agent in a window, or record it where no window can open."""
    import dqn_support as support

    if args.watch == 0 and not args.video:
        return
    episodes = args.watch or 1
    make = lambda render_mode: make_env(env_id, unwrapped=reward == "shaped", render_mode=render_mode,
                                        pixels=agent.pixels)
    policy = agent.greedy_action
    seed = support.eval_seed(args)
    if not args.video and support.display_available() and support.watch_in_window(make, policy, episodes, seed):
        return
    path = support.record_video(make, policy, episodes, seed, args.video or run_dir / "agent.mp4")
    print(f"saved video {path}")


def play(args):
    """--play: load a checkpoint and watch or record it, without training."""
    import dqn_support as support

    def make_agent(meta):
        if torch.device(args.device).type != "cpu" and isinstance(meta["n_states"], int):
            raise support.UsageError(f"--device {args.device} is for --pixels checkpoints; {args.play} runs on the CPU")
        if args.env is not None and args.env != meta["env_id"]:
            raise support.UsageError(f"--play: {args.play} was saved for {meta['env_id']}, not {args.env}")
        return DQN(meta["n_states"], meta["n_actions"], hidden=meta["hidden"], device=args.device)

    agent, meta = support.load_checkpoint(args.play, make_agent)
    check = make_env(meta["env_id"], unwrapped=False, pixels=agent.pixels)
    shape = (n_states_of(check), int(check.action_space.n))
    check.close()
    if shape != (meta["n_states"], meta["n_actions"]):
        raise support.UsageError(f"--play: {args.play} expects {meta['n_states']} states and "
                                 f"{meta['n_actions']} actions, but {meta['env_id']} has {shape[0]} and {shape[1]}")
    run_dir = Path(args.play).parent
    watch(agent, args, run_dir, meta["env_id"], meta["reward"])
    return 0


REWARDS = {"shaped": shaped_reward, "env": env_reward}

if __name__ == "__main__":
    raise SystemExit(main())
