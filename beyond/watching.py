"""Watching the agent: after training in a window where there is a display, else recorded to a video
(beyond/video.py), each frame with its Q-value panel (beyond/overlay.py); the learning video's
moments marked on the reward plot; and --render's window check.
"""

from pathlib import Path

from beyond import tasks
from beyond.evaluation import eval_seed
from beyond.overlay import QValueOverlay
from beyond.pixels import env_maker
from beyond.video import name_display_driver, record_video, watch_in_window


def watch(agent, args, run_dir, env_id, reward, title):
    """Play the greedy agent in a window (titled title), or record it to run_dir where no window can open."""
    if args.watch == 0 and not args.video:
        return
    episodes, seed = args.watch or 1, eval_seed(args.seed)

    def make():
        env = env_maker(agent)(env_id, unwrapped=reward == "shaped", render_mode="rgb_array")
        return env if args.no_overlay else QValueOverlay(env, agent, episodes)

    in_window = not args.video and tasks.display_available()
    if in_window and watch_in_window(make, agent.greedy_action, episodes, seed, title):
        return
    path = record_video(make(), agent.greedy_action, episodes, seed, args.video or Path(run_dir) / "agent.mp4")
    print(f"saved video {path}")


def mark_snapshots(figure, moments, records):
    """Vertical lines on the reward plot at the moments the learning video shows.

    records (train()'s) place a moment inside its episode: two copies taken during one long
    episode get two lines, not one on top of the other.
    """
    if not moments:
        return figure
    axes = figure.axes
    episodes = [episode_position(m, records) for m in moments]
    for ax in axes[:2]:
        for episode in episodes:
            ax.axvline(episode, color="grey", lw=0.8, ls="--")
    if len(axes) > 2:
        for m in moments:
            axes[2].axvline(m["env_steps"], color="grey", lw=0.8, ls="--")
    axes[0].set_title(axes[0].get_title() + "\n(dashed lines: the moments the learning video shows)", fontsize=9)
    return figure


def episode_position(moment, records):
    """Where on the episode axis moment's copy was taken: its episode plus the share of that episode played."""
    episode = moment["episode"]
    if episode >= len(records):
        return episode
    start = records[episode - 1]["env_steps"] if episode else 0
    length = records[episode]["env_steps"] - start
    return episode + (moment["env_steps"] - start) / length if length else episode


# ---------------------------------------------------------------------------------------
# Displays
# ---------------------------------------------------------------------------------------
def can_render(env_id, log=print):
    """--render needs a window: check once before training instead of failing mid-run."""
    if not tasks.display_available():
        log("--render: no display (DISPLAY/WAYLAND_DISPLAY unset); training without rendering")
        return False
    name_display_driver()
    try:
        env = tasks.make_env(env_id, render_mode="human")
        env.reset()
        env.render()
        env.close()
        return True
    except Exception as e:
        log(
            f"--render: no window could open ({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
            "training without rendering"
        )
        return False
