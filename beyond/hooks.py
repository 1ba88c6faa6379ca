"""Training hooks: what train() needs beyond the blog, plugged in through dqn.Hooks.

TrainingHooks is made of one part per job: Schedules (epsilon, the learning rate, prioritized replay's beta),
an Evaluator (periodic greedy evaluations, the early stop with its confirmation, keep-best;
the judge's is a subclass), Safety (Ctrl-C, divergence), Progress (the bar while the memory
fills), and the outputs: Snapshots (the copies of eval_net the learning video plays),
TensorBoard and rendering while training. NotebookProgress is the notebook's display.
"""

import contextlib
import math
import signal
import sys
import time

import numpy as np
import torch

import dqn
from beyond.averaged import policy_net
from beyond.evaluation import Confirmation, confirm_seed, eval_seed, evaluate
from beyond.values import ValueCheck

SNAPSHOT_EVERY = 20  # env steps between copies of eval_net at first; doubles each time MAX_SNAPSHOTS fill up
MAX_SNAPSHOTS = 64


def linear_schedule(start, end, steps):
    """A value going linearly from start to end over steps env steps, then staying at end."""
    return lambda env_steps: start + (end - start) * min(env_steps / steps, 1.0)


class Snapshots(dqn.Hooks):
    """Copies of eval_net along training, for the learning video; train(agent, env, hooks=Snapshots(agent)).

    A copy every SNAPSHOT_EVERY env steps from the first learn step; past MAX_SNAPSHOTS every
    other copy goes and the interval doubles, so the copies stay few and evenly spaced.
    """

    def __init__(self, agent, enabled=True):
        self.agent, self.taking_snapshots = agent, enabled
        self.snapshots, self.snapshot_every, self.next_snapshot, self.episode = [], SNAPSHOT_EVERY, 0, 0

    def before_step(self, env_steps):
        if self.taking_snapshots and self.agent.learn_step_counter and env_steps >= self.next_snapshot:
            self.take_snapshot(env_steps)

    def after_episode(self, record):
        self.episode = record["episode"] + 1

    def take_snapshot(self, env_steps):
        """Copy the greedy policy's weights (eval_net's, or --averaged-policy's average) as they are now."""
        weights = copy_weights(policy_net(self.agent))
        self.snapshots.append(dict(env_steps=env_steps, episode=self.episode, weights=weights))
        if len(self.snapshots) > MAX_SNAPSHOTS:
            self.snapshots, self.snapshot_every = self.snapshots[::2], self.snapshot_every * 2
        self.next_snapshot = env_steps + self.snapshot_every

    def end_snapshot(self, records):
        """The last copy, of the weights training ended with (call it before swapping any in)."""
        if self.snapshots and self.snapshots[-1]["env_steps"] < records[-1]["env_steps"]:
            self.episode = records[-1]["episode"]
            self.take_snapshot(records[-1]["env_steps"])

    def learning_moments(self, n):
        """n of the snapshots, evenly spread from the first learn step to the end of training."""
        if not self.snapshots or not n:
            return []
        return [self.snapshots[i] for i in np.unique(np.linspace(0, len(self.snapshots) - 1, n).round().astype(int))]


class NotebookProgress(Snapshots):
    """Snapshots, and a notebook display of how training is going, in its two phases.

    First the replay memory fills: a bar with a known end, learning_starts + 1 transitions.
    Then the agent learns, for as long as its episodes last: how many env steps a run
    takes is not known before it ends (an episode lasts until the pole falls, and a late
    one can be 10,000 steps), so this phase shows what is known, the episode, the env
    steps and the rate, and no bar or remaining time that would race through the short
    early episodes and then stall. It redraws at most every REDRAW_EVERY seconds, and
    finish() replaces it with a line of text, which is what a saved notebook keeps.
    """

    REDRAW_EVERY = 0.5  # seconds: often enough to look live, rarely enough to cost the kernel nothing
    CHECK_EVERY = 100  # env steps between looks at the clock

    def __init__(self, agent, episodes, labels=None):
        """labels: the display's words (PROGRESS_LABELS' keys), for a notebook in another language."""
        from IPython.display import HTML, display

        super().__init__(agent)
        self.episodes, self.labels, self.html_of = episodes, {**PROGRESS_LABELS, **(labels or {})}, HTML
        self.env_steps, self.done, self.start, self.drawn = 0, 0, time.perf_counter(), -math.inf
        self.shown = display(HTML(self.html()), display_id=True)  # at once: the filling starts now

    def before_step(self, env_steps):
        super().before_step(env_steps)
        self.env_steps = env_steps
        if env_steps % self.CHECK_EVERY == 0:
            self.redraw()

    def after_episode(self, record):
        super().after_episode(record)
        self.env_steps, self.done = record["env_steps"], record["episode"] + 1
        self.redraw()

    def redraw(self):
        """Show html() in place of the last drawing, if REDRAW_EVERY seconds have passed (in a kernel)."""
        now = time.perf_counter()
        if self.shown is not None and now - self.drawn >= self.REDRAW_EVERY:
            self.drawn = now
            self.shown.update(self.html_of(self.html()))

    def html(self):
        """The display as it is now: the memory filling up, or learning."""
        agent, words = self.agent, self.labels
        needed = agent.learning_starts + 1
        if agent.memory.counter < needed:
            filled = agent.memory.counter
            text = words["filling"].format(filled=filled, needed=needed)
            return f'<progress value="{filled}" max="{needed}" style="width: 20em"></progress> {text}'
        rate = self.env_steps / max(time.perf_counter() - self.start, 1e-9)
        return words["learning"].format(done=self.done, of=self.episodes, env_steps=self.env_steps, rate=rate)

    def finish(self, records):
        """Leave, in the display's place, what ran: episodes, env steps, learn steps, time, rate."""
        from IPython.display import Pretty

        wall_s = records[-1]["wall_s"] if records else 0.0
        env_steps = records[-1]["env_steps"] if records else 0
        text = self.labels["finished"].format(
            episodes=len(records),
            env_steps=env_steps,
            learn_steps=self.agent.learn_step_counter,
            wall_s=wall_s,
            rate=env_steps / max(wall_s, 1e-9),
            threads=torch.get_num_threads(),
        )
        if self.shown is None:  # outside a notebook kernel display() printed the first drawing and gave no handle
            print(text)
        else:
            self.shown.update(Pretty(text))


PROGRESS_LABELS = dict(
    filling="filling the replay memory: {filled:,} of {needed:,} transitions, then learning starts",
    learning="learning: episode {done:,} of at most {of:,} · {env_steps:,} env steps · {rate:,.0f} env steps/s",
    finished=(
        "trained {episodes} episodes: {env_steps:,} env steps, {learn_steps:,} learn steps "
        "in {wall_s:.1f} s ({rate:,.0f} env steps/s; torch threads: {threads})"
    ),
)


class Schedules:
    """epsilon's linear schedule, Adam's learning rate (--lr-steps) and prioritized replay's beta rising to 1:
    functions of env steps alone."""

    def __init__(self, args):
        self.epsilon = self.lr = self.beta = None
        if args.epsilon_steps:
            self.epsilon = linear_schedule(args.epsilon_start, args.epsilon_end, args.epsilon_steps)
        if args.lr_steps:
            self.lr = linear_schedule(args.lr, args.lr_end, args.lr_steps)
        if args.prioritized:  # the importance weights' exponent
            self.beta = linear_schedule(args.per_beta, 1.0, args.per_beta_steps)

    def apply(self, agent, env_steps):
        if self.epsilon is not None:
            agent.epsilon = self.epsilon(env_steps)
        if self.lr is not None:
            for group in agent.optimizer.param_groups:
                group["lr"] = self.lr(env_steps)
        if self.beta is not None:
            agent.memory.beta = self.beta(env_steps)


class Progress:
    """A bar on stderr while the replay memory fills; none with --quiet, and none once learning starts."""

    def __init__(self, agent, quiet=False):
        self.bar = None
        if not quiet:
            from tqdm import tqdm

            total = agent.learning_starts + 1
            self.bar = tqdm(total=total, desc="collecting experience", unit="transition", leave=False, file=sys.stderr)

    def after_episode(self, record):
        if self.bar is None:
            return
        self.bar.update(min(record["steps"], self.bar.total - self.bar.n))
        self.bar.set_postfix(episode=record["episode"], steps=record["steps"])
        if record["learning"] or self.bar.n >= self.bar.total:
            self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Safety:
    """Ctrl-C stops training at the next step boundary; a loss that is not finite stops it too."""

    RESUME_STATE = ("good_state", "diverged")

    def __init__(self, agent):
        self.agent, self.interrupted = agent, False
        self.diverged = None  # the record of the episode whose loss was not finite
        self.good_state = None  # the greedy policy's weights after the last finite episode

    def diverges(self, record):
        """Whether this episode's loss is not finite; otherwise its weights become the last good ones."""
        if math.isfinite(record["loss"]) or not record["learning"]:
            self.good_state = copy_weights(policy_net(self.agent))
            return False
        self.diverged = record
        return True

    @contextlib.contextmanager
    def ctrl_c_stops(self, hooks):
        """Inside: the first SIGINT sets hooks.stop, which ends train() at the next step boundary."""

        def handler(signum, frame):
            self.interrupted = True
            hooks.stop = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class Evaluator:
    """Periodic greedy evaluations: each recorded, the best kept (--keep-best), the early stop at a confirmed pass."""

    RESUME_STATE = ("evals", "solved", "best", "next_eval", "unconfirmed")

    def __init__(self, agent, args, log=print, reward_fn=None, scalars=None):
        """reward_fn: the reward the run learns from; with --value-estimates, evaluations check the net against it.

        scalars: a beyond.tensorboard.ScalarLog that hears every evaluation (--tensorboard).
        """
        self.agent, self.args, self.log, self.scalars = agent, args, log, scalars
        self.reward_fn = reward_fn if args.value_estimates else None
        self.evals = []
        self.solved = None  # (eval result, policy weights) of the eval that triggered --early-stop
        self.best = None  # (eval result, policy weights) of the best periodic eval, for --keep-best
        self.unconfirmed = []  # (env_steps, eval mean, confirmation mean) of passes --confirm-episodes refuted
        self.next_eval = args.eval_every  # a threshold, not a multiple: --pixels steps count 2 frames

    def due(self, env_steps):
        """Whether a periodic evaluation is due before this env step (then the next one is scheduled)."""
        if not self.args.eval_every or env_steps < self.next_eval:
            return False
        self.next_eval += self.args.eval_every
        return True

    def run_eval(self, env_steps):
        """A periodic greedy evaluation: record it, remember the best; True where it stops training early."""
        args = self.args
        result = self.evaluate(eval_seed(args.seed))
        result.update(env_steps=env_steps, final=0)
        self.record(result)
        if args.keep_best and (self.best is None or result["mean"] > self.best[0]["mean"]):
            self.best = (result, copy_weights(policy_net(self.agent)))
        if not args.quiet:
            self.log(
                f"eval @ {env_steps} env steps: greedy return {result['mean']:.1f} "
                f"± {result['std']:.1f} (min {result['min']:.0f})"
            )
        if args.early_stop is None or args.no_early_stop or result["mean"] < args.early_stop:
            return False
        if args.confirm_episodes and not self.confirmed(result):
            return False
        print(f"early stop: greedy eval {result['mean']:.1f} >= {args.early_stop} after {env_steps} env steps")
        # the loop still finishes this step; keep the agent exactly as it was evaluated
        self.solved = (result, copy_weights(policy_net(self.agent)))
        return True

    def confirmed(self, result):
        """--confirm-episodes: whether the weights that passed pass again on that many fresh episodes.

        A pass that does not hold is logged and recorded in `unconfirmed`, and training goes on.
        """
        args = self.args

        def confirm(attempt):
            return self.evaluate(confirm_seed(args.seed, attempt), args.confirm_episodes)["mean"]

        passes = Confirmation(args.early_stop, confirm, self.unconfirmed)
        confirmation = passes.holds(result["env_steps"], result["mean"])
        result["confirmed_mean"] = self.unconfirmed[-1][2] if confirmation is None else confirmation
        if confirmation is None and not args.quiet:
            self.log(f"not confirmed: {result['confirmed_mean']:.1f} on {args.confirm_episodes} fresh episodes")
        return confirmation is not None

    def final(self, env_steps, seed):
        """The evaluation of the weights a run ends with, on the episodes of seed; recorded, and returned."""
        result = self.evaluate(seed)
        self.record(dict(result, env_steps=env_steps, final=1))
        return result

    def record(self, result):
        self.evals.append(result)
        if self.scalars:
            self.scalars.evaluation(result)

    def evaluate(self, seed, episodes=None):
        """A greedy evaluation of the agent as it is now; with --value-estimates, its values checked too."""
        values = ValueCheck(self.reward_fn, self.agent.gamma) if self.reward_fn else None
        episodes = episodes or self.args.eval_episodes
        return evaluate(self.agent, episodes, self.args.eval_env, seed=seed, values=values)


class TrainingHooks(Snapshots):
    """What train() does beyond the blog, one part per job: the schedules, the evaluator, safety (Ctrl-C and
    divergence), the progress bar, and the outputs (the learning video's snapshots, TensorBoard, rendering)."""

    def __init__(self, agent, env, args, log=print, reward_fn=None, scalars=None, evaluator=None):
        """evaluator: an Evaluator (default: one for args), e.g. the judge's, which confirms every pass."""
        super().__init__(agent, enabled=bool(args.snapshots and args.watch))  # the learning video wants them
        self.env, self.args, self.scalars = env, args, scalars
        self.render = env.unwrapped.render_mode == "human"  # --render, and a window could open
        self.schedules = Schedules(args)
        self.evaluator = evaluator or Evaluator(agent, args, log, reward_fn, scalars)
        self.safety = Safety(agent)
        self.progress = Progress(agent, args.quiet)

    def before_step(self, env_steps):
        if self.args.max_env_steps and env_steps + 1 >= self.args.max_env_steps:
            self.stop = True  # this step is the last one
        self.schedules.apply(self.agent, env_steps)
        if self.evaluator.due(env_steps) and self.evaluator.run_eval(env_steps):
            self.stop = True
        super().before_step(env_steps)

    def after_episode(self, record):
        super().after_episode(record)
        if self.scalars:
            self.scalars.episode(record)
        self.progress.after_episode(record)
        if self.safety.diverges(record):
            self.stop = True
        if self.render:  # human mode renders inside env.step; switch it per episode
            next_episode = record["episode"] + 1
            self.env.unwrapped.render_mode = "human" if next_episode % self.args.render_every == 0 else None

    # What the rest of training depends on, for --resume (beyond/resume.py), by the part that
    # keeps it; the schedules are functions of env steps alone, and the rest is rebuilt from
    # the run's settings.
    SNAPSHOT_STATE = ("taking_snapshots", "snapshots", "snapshot_every", "next_snapshot", "episode")
    RESUME_STATE = (*Evaluator.RESUME_STATE, *Safety.RESUME_STATE, *SNAPSHOT_STATE)

    def owners(self):
        """{name: the part that keeps it} for RESUME_STATE."""
        parts = [(self.evaluator, Evaluator.RESUME_STATE), (self.safety, Safety.RESUME_STATE)]
        return {name: part for part, names in [*parts, (self, self.SNAPSHOT_STATE)] for name in names}

    def resume_state(self):
        """The RESUME_STATE values, for resume.pt."""
        return {name: getattr(part, name) for name, part in self.owners().items()}

    def load_resume_state(self, state):
        """Carry on with a stopped run's bookkeeping; its memory is full already, so no progress bar."""
        owners = self.owners()
        for name, value in state.items():
            setattr(owners[name], name, value)
        if self.agent.memory.counter > self.agent.learning_starts:
            self.progress.close()

    @contextlib.contextmanager
    def ctrl_c_stops_training(self):
        """Inside: the first SIGINT asks the loop to stop at the next step boundary."""
        try:
            with self.safety.ctrl_c_stops(self):
                yield
        finally:
            self.progress.close()


def copy_weights(net):
    """A copy of net's state_dict that later training steps cannot change."""
    return {k: v.clone() for k, v in net.state_dict().items()}


@contextlib.contextmanager
def weights_kept(net):
    """Inside, net may load other weights (a snapshot's, say); its own are back on the way out."""
    kept = copy_weights(net)
    try:
        yield
    finally:
        net.load_state_dict(kept)


@contextlib.contextmanager
def ignore_ctrl_c():
    """While saving, a second Ctrl-C must not leave half-written files behind."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
