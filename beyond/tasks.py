"""The tasks the same DQN is taken to, and the settings each is judged and trained with.

One row per env: its threshold (gymnasium's reward_threshold; a test holds them equal), how
often and on how many episodes a run is evaluated, how many fresh episodes confirm a pass,
the budget in env steps, a random policy's return (what "never learned" is measured
against), and the values --preset tuned uses on it. The judge
(bench/judge.py), the tuner, the ablation and dqn.py's early stop all read this table.
"""

import os
from dataclasses import dataclass, field

import gymnasium as gym

import dqn


@dataclass(frozen=True)
class Task:
    env_id: str
    threshold: float  # a greedy evaluation's mean at or above this is a pass
    eval_every: int  # env steps between greedy evaluations
    eval_episodes: int
    confirm_episodes: int  # fresh episodes that a pass must pass again on
    budget: int  # env steps a judged seed may take
    random_return: float  # a uniformly random policy's mean return (a test measures it on 100 episodes)
    tuned: dict = field(default_factory=dict)  # --preset tuned's values on this env, on top of the standard task


ZOO_ACROBOT_LUNAR = dict(  # rl-zoo's Acrobot-v1 and LunarLander-v3 values share everything
    lr=6.3e-4,
    batch_size=128,
    hidden=256,  # one hidden layer of 256, as Acrobot's study began; SB3 has two (hidden_layers below)
    gamma=0.99,
    target_replace_iter=250,  # 250 env steps at one learn step each
    learning_starts=1000,  # the zoo's 0; dqn.py waits for a few batches' worth of rows
    memory_capacity=50_000,
    epsilon_end=0.9,  # greedy probability: the zoo's final epsilon 0.1
    epsilon_steps=12_000,  # exploration_fraction 0.12 of 100,000
    double=False,
    huber=True,
    grad_clip=10.0,
    n_step=1,
    dueling=False,
    prioritized=False,
    replay_ratio=1,  # train_freq 4 with gradient_steps -1: one learn step per env step
)
# rl-zoo's values (bench/sb3_anchor.py) in dqn.py's terms: each env's first trial. Acrobot's study
# began with one hidden layer; the later ones have SB3's two (LunarLander's one-layer study:
# bench/results/tune_LunarLander-v3/one-hidden-layer/).
RL_ZOO_START = {
    "Acrobot-v1": ZOO_ACROBOT_LUNAR,
    "MountainCar-v0": dict(
        ZOO_ACROBOT_LUNAR,
        hidden_layers=2,
        lr=4e-3,
        gamma=0.98,
        target_replace_iter=300,  # 600 env steps at half a learn step each
        memory_capacity=10_000,
        epsilon_end=0.93,
        epsilon_steps=24_000,  # 0.2 of 120,000
        train_every=16,
        replay_ratio=8,  # train_freq 16, gradient_steps 8
    ),
    "LunarLander-v3": dict(ZOO_ACROBOT_LUNAR, hidden_layers=2),
}

# Each row's tuned values: its study's best trial (bench/tune.py --env; bench/results/tune_<env>/),
# which started from rl-zoo's values in dqn.py's terms; where no study has run yet, those
# values themselves. A test keeps them equal.
TASKS = {
    task.env_id: task
    for task in [
        Task(
            "CartPole-v1",
            475.0,
            eval_every=1000,
            eval_episodes=20,
            confirm_episodes=100,
            budget=50_000,
            random_return=25.0,
            # the tail study's best trial (bench/results/tune_tail/tune_best.json)
            tuned=dict(
                lr=0.00988116445361195,
                batch_size=64,
                hidden=256,
                gamma=0.98,
                target_replace_iter=50,
                learning_starts=500,
                memory_capacity=20_000,
                epsilon_end=1.0,
                epsilon_steps=5000,
                double=False,
                huber=True,
                grad_clip=10.0,
                n_step=5,
                dueling=False,
                prioritized=True,
                per_alpha=0.8,
                replay_ratio=2,
            ),
        ),
        Task(
            "Acrobot-v1",
            -100.0,
            eval_every=2000,
            eval_episodes=20,
            confirm_episodes=100,
            budget=100_000,
            random_return=-500.0,
            tuned=dict(
                lr=0.0020554062603827007,
                batch_size=32,
                hidden=128,
                gamma=0.98,
                target_replace_iter=200,
                learning_starts=2000,
                memory_capacity=5000,
                epsilon_end=0.9,
                epsilon_steps=1000,
                double=True,
                huber=True,
                grad_clip=10.0,
                n_step=1,
                dueling=False,
                prioritized=True,
                replay_ratio=4,
                per_alpha=0.6,
            ),
        ),
        Task(
            "MountainCar-v0",
            -110.0,
            eval_every=5000,
            eval_episodes=20,
            confirm_episodes=100,
            budget=150_000,
            random_return=-200.0,
            # the study's best trial so far (bench/results/tune_MountainCar-v0/tune_best.json):
            # rl-zoo's values, two hidden layers, with 3-step returns
            tuned=dict(
                lr=0.004,
                hidden_layers=2,
                batch_size=128,
                hidden=256,
                gamma=0.98,
                target_replace_iter=300,
                learning_starts=1000,
                memory_capacity=10_000,
                epsilon_end=0.93,
                epsilon_steps=24_000,
                double=False,
                huber=True,
                grad_clip=10.0,
                n_step=3,
                prioritized=False,
                replay_ratio=8,
                train_every=16,
            ),
        ),
        Task(
            "LunarLander-v3",
            200.0,
            eval_every=10_000,
            eval_episodes=20,
            confirm_episodes=100,
            budget=500_000,
            random_return=-190.0,
            # the fresh-seeds study's best trial (bench/results/tune_LunarLander-v3/fresh-seeds/tune_best.json,
            # trial 13): the third study's best (learning from 2,000 env steps, lr falling to 1e-4 as it goes)
            # whose greedy policy is a running average of the weights
            tuned=dict(
                lr=0.0028,
                hidden_layers=2,
                batch_size=64,
                hidden=256,
                gamma=0.99,
                target_replace_iter=50,
                learning_starts=2000,
                memory_capacity=20_000,
                epsilon_end=0.98,
                epsilon_steps=12_000,
                double=True,
                huber=True,
                grad_clip=0.0,
                n_step=2,
                prioritized=False,
                replay_ratio=1,
                lr_steps=100_000,
                lr_end=0.0001,
                averaged_policy=0.0003,
            ),
        ),
    ]
}


def is_cartpole(env_id):
    """Which task is this: one of CartPole's versions (judged on CartPole-v1, the blog's reward applies)."""
    return env_id.startswith("CartPole")


def is_cartpole_env(env):
    """is_cartpole for an env object, read from the env itself (it may have no registered id)."""
    return hasattr(env.unwrapped, "theta_threshold_radians")


def task_for(env_id):
    """The row for env_id; CartPole's versions share CartPole-v1's, since they are evaluated on it."""
    if is_cartpole(env_id):
        return TASKS["CartPole-v1"]
    return TASKS.get(env_id)


def threshold_of(env_id):
    """The mean return that counts as solved: the table's, else gymnasium's reward_threshold (None if it has none)."""
    task = task_for(env_id)
    if task:
        return task.threshold
    try:
        return gym.spec(env_id).reward_threshold
    except gym.error.Error:
        return None


def solved_threshold(args):
    """A run's threshold for solved: its --early-stop where given, else its evaluation env's."""
    return args.early_stop if args.early_stop is not None else threshold_of(args.eval_env)


def random_return_of(env_id):
    """A random policy's mean return on env_id, where the table has the env (None elsewhere)."""
    task = task_for(env_id)
    return task.random_return if task else None


def run_settings(task):
    """The flags' values that a tuned run on task takes from the table."""
    return dict(
        env=task.env_id,
        early_stop=task.threshold,
        eval_every=task.eval_every,
        eval_episodes=task.eval_episodes,
        confirm_episodes=task.confirm_episodes,
        max_env_steps=2 * task.budget,
    )


# The envs a file may name: a run folder or checkpoint from anyone makes only these.
KNOWN_ENVS = ("CartPole-v0", *TASKS)


class EnvIdError(ValueError):
    """An env id this program will not make: one line says why."""


def check_env_id(env_id, from_file=False):
    """env_id, if this program makes it: a registered gymnasium id, and from a file one of KNOWN_ENVS.

    gymnasium imports the module that "module:Id" names before it looks the id up, so an id
    with a colon could run any code; it is refused before gymnasium sees it.
    """
    if not isinstance(env_id, str) or not env_id or len(env_id) > 100:
        raise EnvIdError(f"not an env id: {str(env_id)[:100]!r}")
    if ":" in env_id:
        raise EnvIdError(f"{env_id!r} names a module to import; give a registered env id such as CartPole-v1")
    if from_file and env_id not in KNOWN_ENVS:
        raise EnvIdError(f"{env_id!r} is not one of the envs a saved run may name ({', '.join(KNOWN_ENVS)})")
    if env_id not in gym.registry:
        try:  # without a colon, spec() only looks the id up; its message suggests the nearest ones
            gym.spec(env_id)
        except gym.error.Error as e:
            raise EnvIdError(f"unknown env id {env_id!r} ({str(e).splitlines()[0]})") from None
    return env_id


def display_available():
    """True where a window can plausibly open (X11 or Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def make_env(env_id, unwrapped=True, render_mode=None):
    """dqn.make_env for a checked id: every env this program makes comes from here."""
    return dqn.make_env(check_env_id(env_id), unwrapped, render_mode)
