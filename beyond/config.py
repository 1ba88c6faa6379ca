"""Every setting of a run, named once: the run configuration.

Each Setting has its default, type, allowed range, help and tags. Everything else reads
this list: the command line (beyond/flags.py builds argparse from it and checks the ranges),
the files (resume.pt keeps the settings that are not outputs and reads them back through
the same checks), the agent (the settings tagged `agent` build it, and a checkpoint keeps
them), the reference runs (the settings tagged `identity` say which runs are the same), and
--resume (the settings tagged `on_resume` may be given again). A new setting is one entry.

Presets, the task table's rows and the tuner's trials are partial configurations: dicts of
some settings' values, by setting name (tests/test_config.py holds them to that).
"""

from dataclasses import dataclass

import dqn
from beyond import limits
from beyond.tasks import TASKS, run_settings


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    kind: type = int  # the type of its value: int, float, str or bool
    help: str | None = None  # None: argparse prints no help line, and so no default either
    flag: str = "value"  # "value": --x V; "switch": --x / --no-x; "on": --x alone
    choices: tuple | None = None
    least: float | None = None  # the smallest value allowed (checked when not None)
    most: float | None = None  # the largest
    metavar: str | None = None
    agent: bool = False  # builds the agent; a checkpoint keeps it
    identity: bool = False  # two runs that agree on every identity setting are the same run, seed aside
    output: bool = False  # names where a run writes: only the command line gives it, never a file
    on_resume: bool = False  # --resume takes it from the command line (the budget and the display)
    since: bool = False  # newer than resume format 3 and the first reference files: those ran at its default

    @property
    def option(self):
        return "--" + self.name.replace("_", "-")


def count(name, default, least=1, most=limits.LARGEST_COUNT, **tags):
    """An integer count of something: at least `least`, at most `most`."""
    return Setting(name, default, int, least=least, most=most, **tags)


def probability(name, default, **tags):
    """A probability: a float from 0 to 1."""
    return Setting(name, default, float, least=0.0, most=1.0, **tags)


def switch(name, help, **tags):
    """Off unless given; --no-X undoes a preset's X."""
    return Setting(name, False, bool, help, flag="switch", **tags)


def on(name, help, **tags):
    """--x alone, with no --no-x."""
    return Setting(name, False, bool, help, flag="on", **tags)


BLOG = dqn.hyperparameters
# The standard task, learned from its own reward with the known fixes: what both presets share.
STANDARD_TASK = dict(
    env="CartPole-v1",
    reward="env",
    terminal_mask=True,
    double=True,
    huber=True,
    grad_clip=10.0,
    gamma=0.99,
    learning_starts=1000,
    epsilon_start=0.0,
    early_stop=475.0,
    episodes=100_000,
)


def tuned_on(task):
    """--preset tuned on a task: the standard task, the task's judging cadence and its tuned values."""
    return dict(STANDARD_TASK, **run_settings(task), **task.tuned)


# Presets: sets of defaults (see docs/going-further.md and docs/pixels.md).
PRESETS = {
    "blog": {},
    # CartPole's row of the task table (beyond/tasks.py); --env picks another row's
    "tuned": tuned_on(TASKS["CartPole-v1"]),
    # --pixels: from screen images (beyond/pixels.py); the screens and the protocol of
    # bench/pixel_protocol.py chose the view, the reward and n_step (docs/pixels.md)
    "pixels": dict(
        STANDARD_TASK,
        pixels=True,
        track_strip=True,
        reward="shaped",  # the blog's: its cart-position term keeps the cart off the track's ends
        n_step=3,
        lr=1e-4,
        batch_size=32,
        hidden=256,
        memory_capacity=150_000,
        train_every=4,
        target_replace_iter=1000,
        epsilon_end=0.99,
        epsilon_steps=40_000,
        eval_every=20_000,
        eval_episodes=20,
        confirm_episodes=100,
        value_estimates=False,  # playing on past each episode's end costs renders: off
        keep_best=True,
        max_env_steps=500_000,
    ),
}

# (argparse group, its settings), in the order --help lists them
GROUPS = [
    (
        "training",
        [
            count("episodes", 300, help="training episodes", identity=True, on_resume=True),
            count(
                "max_episode_steps",
                dqn.MAX_EPISODE_STEPS,
                help="cap on each episode; the unwrapped env never ends once the agent is good",
                identity=True,
            ),
            count(
                "max_env_steps",
                0,
                least=0,
                help="stop training after this many env steps in all (0: no limit)",
                identity=True,
                on_resume=True,
            ),
            count("seed", None, least=0, help="seed torch, numpy and the env for a repeatable run"),
            Setting(
                "env",
                None,
                str,
                "gymnasium env id with a discrete action space (default: the blog's CartPole-v0; "
                "with --play: the checkpoint's)",
                identity=True,
            ),
            Setting(
                "reward",
                "shaped",
                str,
                "shaped: the blog's r1 + r2 on the unwrapped env; env: the env's own "
                "reward on the standard, time-limited task",
                choices=("shaped", "env"),
                identity=True,
            ),
            Setting(
                "preset",
                None,
                str,
                "a set of defaults; flags given explicitly still win (default: blog, or pixels with --pixels)",
                choices=tuple(sorted(PRESETS)),
            ),
            on(
                "pixels",
                "learn from screen images instead of the 4 state numbers (beyond/pixels.py); "
                "implies --preset pixels unless another preset is given",
                identity=True,
            ),
            switch(
                "track_strip",
                "with --pixels: the view's bottom rows show where the cart is on the whole track",
                agent=True,
                identity=True,
            ),
            Setting(
                "device",
                "cpu",
                str,
                "torch device for the --pixels CNN, e.g. cuda (the state MLP always runs on the CPU)",
            ),
        ],
    ),
    (
        "hyperparameters (the blog's values)",
        [
            count("batch_size", BLOG["batch_size"], agent=True, identity=True),
            Setting("lr", BLOG["lr"], float, "Adam learning rate", agent=True, identity=True),
            probability(
                "epsilon",
                BLOG["epsilon"],
                help="probability of acting greedily (the blog's convention, not the usual one)",
                agent=True,
                identity=True,
            ),
            probability("gamma", BLOG["gamma"], help="discount factor", agent=True, identity=True),
            count(
                "target_replace_iter",
                BLOG["target_replace_iter"],
                help="copy eval_net into target_net every this many learn steps",
                agent=True,
                identity=True,
            ),
            count("memory_capacity", BLOG["memory_capacity"], help="replay memory rows", agent=True, identity=True),
        ],
    ),
    (
        "beyond the blog: the known DQN fixes (off by default)",
        [
            count("hidden", BLOG["hidden"], help="hidden units of q_net", agent=True, identity=True),
            count(
                "hidden_layers",
                1,
                most=limits.LARGEST_HIDDEN_LAYERS,
                help="hidden layers of --hidden units (beyond/deep.py; 1: the blog's q_net, 2: SB3's)",
                agent=True,
                identity=True,
                since=True,
            ),
            count(
                "learning_starts",
                None,
                least=0,
                help="learn once more than this many transitions have been stored (default: memory capacity; "
                "more than the capacity is allowed: a small memory can wait as long as a large one)",
                agent=True,
                identity=True,
            ),
            count("train_every", BLOG["train_every"], help="env steps per learn() call", agent=True, identity=True),
            switch("double", "Double DQN target", agent=True, identity=True),
            switch(
                "terminal_mask",
                "no bootstrap from terminated states (truncated ones still bootstrap)",
                agent=True,
                identity=True,
            ),
            switch("huber", "Smooth L1 (Huber) loss instead of MSE", agent=True, identity=True),
            Setting(
                "grad_clip",
                None,
                float,
                "clip the gradient norm at this value (0: no clipping)",
                agent=True,
                identity=True,
            ),
            probability(
                "averaged_policy",
                0.0,
                help="play greedily with a running average of eval_net's weights, moved this fraction of "
                "the way to them after each learn step; training is unchanged (beyond/averaged.py; 0: off)",
                agent=True,
                identity=True,
                since=True,
            ),
        ],
    ),
    (
        "beyond the blog: extensions from Rainbow (off by default; docs/going-further.md)",
        [
            count(
                "n_step",
                1,
                help="learn from the next N rewards before bootstrapping (1: the blog's)",
                agent=True,
                identity=True,
            ),
            switch("dueling", "dueling head: Q = V + A - mean(A)", agent=True, identity=True),
            switch("prioritized", "prioritized replay: draw rows by their last |TD error|", agent=True, identity=True),
            count(
                "replay_ratio",
                1,
                most=limits.LARGEST_REPLAY_RATIO,
                help="learn steps for each env step that learns (beyond/replay_ratio.py; 1: the blog's)",
                agent=True,
                identity=True,
            ),
            probability(
                "per_alpha",
                0.6,
                help="with --prioritized: priority = (|TD error| + eps)^alpha",
                agent=True,
                identity=True,
            ),
            probability(
                "per_beta",
                0.4,
                help="with --prioritized: importance-weight exponent at the start",
                agent=True,
                identity=True,
            ),
            count(
                "per_beta_steps",
                100_000,
                help="with --prioritized: env steps over which beta rises to 1",
                identity=True,
            ),
        ],
    ),
    (
        "exploration schedule (off by default)",
        [
            probability(
                "epsilon_start",
                None,
                help="greedy probability at step 0; rises linearly to --epsilon-end",
                identity=True,
            ),
            probability("epsilon_end", None, help="greedy probability after --epsilon-steps", identity=True),
            count("epsilon_steps", None, help="env steps of the linear schedule", identity=True),
        ],
    ),
    (
        "learning-rate schedule (off by default)",
        [
            Setting(
                "lr_end",
                None,
                float,
                "Adam learning rate after --lr-steps, reached linearly from --lr",
                identity=True,
                since=True,
            ),
            count("lr_steps", None, help="env steps of the learning rate's linear schedule", identity=True, since=True),
        ],
    ),
    (
        "evaluation",
        [
            count(
                "eval_every",
                0,
                least=0,
                help="also run a greedy evaluation every this many env steps (0: only at the end)",
                identity=True,
            ),
            count(
                "eval_episodes",
                20,
                most=limits.LARGEST_EVAL_EPISODES,
                help="episodes of each greedy evaluation",
                identity=True,
            ),
            Setting(
                "early_stop",
                None,
                float,
                "stop once a greedy evaluation's mean reaches this",
                identity=True,
            ),
            on("no_early_stop", "keep training past --early-stop", identity=True),
            count(
                "confirm_episodes",
                0,
                least=0,
                most=limits.LARGEST_EVAL_EPISODES,
                help="stop early only if the passing weights pass again on this many fresh episodes (0: no check)",
                identity=True,
            ),
            Setting(
                "value_estimates",
                True,
                bool,
                "at each evaluation also measure the net's value estimate and the true discounted return "
                "(q_estimate, true_return in evals.csv; beyond/values.py)",
                flag="switch",
            ),
            switch(
                "keep_best",
                "end with the weights of the best periodic evaluation, re-measured on fresh episodes",
                identity=True,
            ),
        ],
    ),
    (
        "output and watching",
        [
            Setting("run_name", None, str, "folder name under --runs-dir (default: a timestamp)", output=True),
            Setting("runs_dir", "runs", str, "where run folders go", output=True),
            Setting("plot", None, str, "reward plot path (default: <run folder>/rewards.png)", output=True),
            on("no_show", "save the plot but never open a window", on_resume=True),
            count(
                "watch",
                3,
                least=0,
                most=limits.LARGEST_WATCH,
                help="greedy episodes to watch after training (recorded to video without a display); 0 skips",
                on_resume=True,
            ),
            on("no_overlay", "watch the bare picture, without the Q-value panel", on_resume=True),
            count(
                "snapshots",
                6,
                least=0,
                most=limits.LARGEST_SNAPSHOTS,
                help="after training, play this many copies of the agent saved along the way, as learning.mp4 "
                "(0: none)",
                on_resume=True,
            ),
            Setting(
                "video",
                None,
                str,
                "record the watched episodes to this .mp4 or .gif path",
                output=True,
                on_resume=True,
            ),
            on("render", "render while training as the blog does; slows training to the display's 50 fps"),
            count("render_every", 1, help="with --render, render every K-th episode"),
            Setting(
                "play",
                None,
                str,
                "load a checkpoint and watch or record it, without training",
                metavar="MODEL_PT",
                output=True,
            ),
            Setting(
                "resume",
                None,
                str,
                "carry on a run stopped by Ctrl-C or its budget, with its own settings; "
                "--max-env-steps and --episodes set the new total",
                metavar="RUN_DIR",
                output=True,
                on_resume=True,
            ),
            on(
                "tensorboard",
                "also log every episode and evaluation for `tensorboard --logdir runs` "
                "(needs: pip install tensorboard)",
                on_resume=True,
            ),
            on("quiet", "print only the summary and paths", on_resume=True),
        ],
    ),
]
SETTINGS = {setting.name: setting for _, group in GROUPS for setting in group}


def names(tag):
    """The names of the settings with this tag, in --help's order."""
    return tuple(name for name, setting in SETTINGS.items() if getattr(setting, tag))


# what builds an agent beyond dqn.hyperparameters (the extensions; track_strip: PixelDQN's view), at its defaults
EXTENSION_DEFAULTS = {name: SETTINGS[name].default for name in names("agent") if name not in dqn.hyperparameters}
OUTPUT_SETTINGS = names("output")
IDENTITY_SETTINGS = names("identity")
RESUME_SETTINGS = names("on_resume")
SETTINGS_ADDED_SINCE = {name: SETTINGS[name].default for name in names("since")}
