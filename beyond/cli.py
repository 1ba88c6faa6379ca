"""The command line: python dqn.py, from its arguments to a trained, saved and watched agent.

main() reads top-down: parse and validate, build the env and agent, train with hooks,
choose the weights and evaluate them, save, watch. The settings live in beyond/config.py, the flags
built from them in beyond/flags.py.
"""

import functools
import os
import sys
import time
from pathlib import Path

import torch

import dqn
from beyond import UsageError, pixels
from beyond.agents import make_agent
from beyond.averaged import policy_net
from beyond.config import names
from beyond.evaluation import eval_seed
from beyond.files import (
    agent_for,
    load_checkpoint,
    make_run_dir,
    save_checkpoint,
    save_evals,
    save_figure,
    save_metrics,
)
from beyond.flags import parse_args
from beyond.hooks import TrainingHooks, ignore_ctrl_c
from beyond.reference import NO_REFERENCE, add_reference_band, diagnoses, matching, outcome_of, placement
from beyond.resume import RESUME_FILE, restore, resumed_args, save_resume_state
from beyond.tasks import display_available, is_cartpole, solved_threshold
from beyond.tensorboard import ScalarLog
from beyond.values import add_value_panel
from beyond.video import record_learning_video
from beyond.watching import can_render, mark_snapshots, watch


def main(argv=None):
    """python dqn.py: train (or --play a checkpoint), save the run, then watch or record it."""
    try:
        args = parse_args(argv)
        if args.play:
            return play(args)
        if args.resume:
            args = resumed_args(args.resume, argv)
        run_dir = make_run_dir(args)
        env, agent = build(args)
        scalars = ScalarLog(run_dir, args) if args.tensorboard else None
        # During training Ctrl-C stops it (the hooks' own handler); from there until all is
        # saved it is ignored, with no moment between the two where it could lose the run.
        with ignore_ctrl_c():
            hooks, records = train_with_hooks(agent, env, args, scalars)
            resume_file = save_resume_state(run_dir / RESUME_FILE, args, agent, env, hooks, records)
            choose_weights_and_evaluate(hooks, records, args)
            if scalars:
                scalars.close()
            moments = hooks.learning_moments(args.snapshots)
            reference = matching(args)
            outcome = outcome_of(agent, hooks.evaluator, records, args, moments)
            figure = save(run_dir, args, agent, records, hooks.evaluator.evals, moments, (reference, outcome))
            if resume_file:
                print(f"saved {resume_file} (python dqn.py --resume {run_dir} trains on from here)")
        if hooks.safety.interrupted:
            print("interrupted: saved the episodes trained so far", file=sys.stderr)
            return 130
        if hooks.safety.diverged:
            return 1
        watch(agent, args, run_dir, args.env, args.reward, title=str(run_dir))
        record_learning(agent, args, run_dir, moments)
        for line in among_references(outcome, reference, hooks.evaluator.evals, records, args, agent):
            print(line)
        print(f"run folder: {run_dir}")
        show(figure, args)
        return 0
    except UsageError as e:
        print(f"dqn.py: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while watching or showing: everything is saved by then
        print("interrupted", file=sys.stderr)
        return 130


def build(args):
    """The training env and a fresh agent for it: the blog's DQN, or PixelDQN with --pixels, and extensions."""
    render = args.render and can_render(args.env, log_for(args))
    make_env = functools.partial(pixels.make_env, track_strip=args.track_strip) if args.pixels else dqn.make_env
    env = make_env(args.env, unwrapped=args.reward == "shaped", render_mode="human" if render else None)
    settings = {name: getattr(args, name) for name in names("agent")}
    agent = make_agent(n_states_of(env), int(env.action_space.n), args.seed, args.pixels, args.device, **settings)
    return env, agent


def train_with_hooks(agent, env, args, scalars=None):
    """dqn.train with the extras plugged in; prints a summary, returns the hooks and the records.

    scalars: a ScalarLog for --tensorboard, or None.
    """
    log = log_for(args)
    reward_fn = REWARDS[args.reward]
    if args.pixels:
        reward_fn = pixels.true_state_reward(reward_fn)
    hooks = TrainingHooks(agent, env, args, log, reward_fn, scalars)
    resume = None
    if args.resume:  # carry on from where the stopped run was
        restore(args.resume_state, agent, env, hooks)
        resume = args.resume_state["train"]
    start = time.perf_counter()
    with hooks.ctrl_c_stops_training():
        records = dqn.train(agent, env, args.episodes, args.max_episode_steps, reward_fn, args.seed, log, hooks, resume)
    elapsed = time.perf_counter() - start
    env.close()
    env_steps = records[-1]["env_steps"] if records else 0
    print(
        f"trained {len(records)} episodes, {env_steps} env steps, {agent.learn_step_counter} learn steps "
        f"in {elapsed:.1f} s ({env_steps / max(elapsed, 1e-9):.0f} steps/s)"
    )
    return hooks, records


def choose_weights_and_evaluate(hooks, records, args):
    """After training (records: train()'s): settle which weights to keep, then the final evaluation.

    Diverged: the last finite weights. Early stop: the weights that passed. --keep-best:
    the best periodic evaluation's (the last weights compete too), re-measured on fresh
    episodes. Otherwise the last weights.
    """
    agent, evaluator, safety = hooks.agent, hooks.evaluator, hooks.safety
    env_steps = records[-1]["env_steps"] if records else 0
    if not safety.diverged:
        hooks.end_snapshot(records)
    final = None
    if safety.diverged:
        policy_net(agent).load_state_dict(safety.good_state)
        r = safety.diverged
        print(
            f"training diverged in episode {r['episode']} (by env step {r['env_steps']}): the loss is "
            f"{r['loss']}; try a smaller --lr than {args.lr}. Saving the last finite weights.",
            file=sys.stderr,
        )
    elif evaluator.solved:  # early stop: keep the agent that passed, not the one a step later
        final, weights = evaluator.solved
        policy_net(agent).load_state_dict(weights)
    elif not safety.interrupted and records:
        seed = eval_seed(args.seed)
        if args.keep_best:
            evaluator.run_eval(env_steps)
            result, weights = evaluator.best
            policy_net(agent).load_state_dict(weights)
            best = f"{result['mean']:.1f} at {result['env_steps']} env steps"
            print(f"keeping the weights of the best evaluation: {best}")
            seed += args.eval_episodes  # episodes the choice was not made on
        final = evaluator.final(env_steps, seed)
    if final:
        print(
            f"greedy evaluation on {args.eval_env}, {args.eval_episodes} episodes: "
            f"mean {final['mean']:.1f} ± {final['std']:.1f}, min {final['min']:.0f}"
        )
    if final and "q_estimate" in final:
        print(
            f"value of the visited states (discounted {args.reward} reward, gamma {agent.gamma}): "
            f"the net believes {final['q_estimate']:.2f}, its greedy policy gets {final['true_return']:.2f}"
        )


def save(run_dir, args, agent, records, evals, moments, placed=(None, None)):
    """metrics.csv, evals.csv, model.pt and the reward plot (moments marked); prints each path, returns the figure.

    placed: (the matching reference or None, the run's outcome): the plot draws the reference band.
    """
    paths = [
        save_metrics(records, evals, run_dir / "metrics.csv"),
        save_evals(evals, run_dir / "evals.csv"),
        save_checkpoint(agent, run_dir / "model.pt", args, len(records)),
    ]
    figure = add_value_panel(labelled_for(dqn.plot(records, evals), args), evals) if records else None
    if figure and moments:
        mark_snapshots(figure, moments, records)
    if figure and placed[0]:
        add_reference_band(figure, *placed)
    if figure:
        paths.append(save_figure(figure, args.plot or run_dir / "rewards.png"))
    for path in paths:
        print(f"saved {path}")
    return figure


def among_references(outcome, reference, evals, records, args, agent):
    """The lines that end a run: its place among the reference runs (or that there are none), then any failure."""
    lines = [placement(outcome, reference) if reference else NO_REFERENCE]
    return lines + diagnoses(outcome, evals, records, args, agent, reference)


def labelled_for(figure, args):
    """dqn.plot speaks of CartPole and its pole; another env's plot names that env instead. The
    evaluation panel, where there is one, marks the threshold that counts as solved."""
    top, steps = figure.axes[:2]
    if not is_cartpole(args.env):
        top.set_title(top.get_title().replace("CartPole", args.env))
        steps.set_ylabel("steps per episode")
    threshold = solved_threshold(args)
    if len(figure.axes) > 2 and threshold is not None:
        solved = f"solved: {threshold:g} on {args.eval_env}"
        figure.axes[2].axhline(threshold, color="tab:red", ls=":", lw=1, label=solved)
        figure.axes[2].legend(fontsize=8, loc="lower right")
    return figure


def record_learning(agent, args, run_dir, moments):
    """The learning video: learning.mp4 in run_dir (a GIF where --video asks for one or ffmpeg is missing)."""
    if moments:
        suffix = ".gif" if args.video and Path(args.video).suffix.lower() == ".gif" else ".mp4"
        seed, path = eval_seed(args.seed), run_dir / f"learning{suffix}"
        print(f"saved learning video {record_learning_video(agent, moments, args.eval_env, seed, path)}")


def show(figure, args):
    """Open the plot in a window, where there is a screen and someone to close it."""
    if figure and not args.no_show and display_available() and not os.environ.get("CI"):
        import matplotlib.pyplot as plt

        plt.show()  # blocks until the window is closed


def play(args):
    """--play: load a checkpoint and watch or record it, without training."""

    def make_agent(meta):
        if torch.device(args.device).type != "cpu" and not pixels.reads_pixels(meta["n_states"]):
            raise UsageError(f"--device {args.device} is for --pixels checkpoints; {args.play} runs on the CPU")
        if args.env is not None and args.env != meta["env_id"]:
            raise UsageError(f"--play: {args.play} was saved for {meta['env_id']}, not {args.env}")
        return agent_for(meta, args.device)

    agent, meta = load_checkpoint(args.play, make_agent)
    check = pixels.env_maker(agent)(meta["env_id"], unwrapped=False)
    shape = (n_states_of(check), int(check.action_space.n))
    check.close()
    if shape != (agent.n_states, agent.n_actions):
        raise UsageError(
            f"--play: {args.play} expects {meta['n_states']} states and "
            f"{meta['n_actions']} actions, but {meta['env_id']} has {shape[0]} and {shape[1]}"
        )
    watch(agent, args, Path(args.play).parent, meta["env_id"], meta["reward"], title=args.play)
    return 0


def n_states_of(env):
    """What an agent takes as n_states: the state's length, or a stack of images' whole shape."""
    shape = env.observation_space.shape
    return shape[0] if len(shape) == 1 else tuple(shape)


def log_for(args):
    """print, or nothing with --quiet."""
    return (lambda *_: None) if args.quiet else print


def env_reward(env, s_, env_reward):
    """The environment's own reward (+1 a step on CartPole), for --reward env."""
    return float(env_reward)


REWARDS = {"shaped": dqn.shaped_reward, "env": env_reward}
