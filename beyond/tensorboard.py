"""--tensorboard: the run's scalars as TensorBoard event files in its run folder.

The layout and tag names follow CleanRL's dqn.py, so that `tensorboard --logdir runs`
compares a run of this project with CleanRL's and Stable-Baselines3's side by side. Every
scalar is logged against env steps, as it happens, so a run can be watched while it trains.
tensorboard is optional: `pip install tensorboard` (requirements-dev.txt has it).
"""

import math

from beyond import UsageError

EPISODE_TAGS = {  # metrics.csv column: tag
    "reward": "charts/episodic_return",
    "steps": "charts/episodic_length",
    "epsilon": "charts/epsilon",
    "loss": "losses/td_loss",
}
EVAL_TAGS = {  # evals.csv column: tag
    "mean": "eval/mean_return",
    "std": "eval/std_return",
    "min": "eval/min_return",
    "q_estimate": "values/q_estimate",
    "true_return": "values/true_return",
}


def check_installed():
    """--tensorboard without the package is a one-line error, before any training."""
    try:
        import tensorboard  # noqa: F401 (only whether it imports)
    except ImportError:
        raise UsageError(
            "--tensorboard needs the tensorboard package, which is not installed: pip install tensorboard"
        ) from None


class ScalarLog:
    """Writes each episode's record and each evaluation's result to run_dir's event file."""

    def __init__(self, run_dir, args):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(run_dir))
        settings = "\n".join(f"|{k}|{v}|" for k, v in sorted(vars(args).items()))
        self.writer.add_text("hyperparameters", f"|flag|value|\n|-|-|\n{settings}")

    def episode(self, record):
        for column, tag in EPISODE_TAGS.items():
            if math.isfinite(record[column]):  # no loss before learning starts
                self.writer.add_scalar(tag, record[column], record["env_steps"])

    def evaluation(self, result):
        for column, tag in EVAL_TAGS.items():
            if column in result:
                self.writer.add_scalar(tag, result[column], result["env_steps"])

    def close(self):
        self.writer.close()
