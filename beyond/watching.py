"""Watching the agent: in a window where there is a display, else recorded to a video.

Also --render's check that a window can open before training starts.
"""

import os
from pathlib import Path

import dqn
from beyond.evaluation import eval_seed
from beyond.files import atomic_path
from beyond.pixels import env_maker

WATCH_MAX_STEPS = 500


def watch(agent, args, run_dir, env_id, reward):
    """Play the greedy agent in a window, or record it where no window can open."""
    if args.watch == 0 and not args.video:
        return
    episodes = args.watch or 1
    make_env = env_maker(agent)

    def make(render_mode):
        return make_env(env_id, unwrapped=reward == "shaped", render_mode=render_mode)

    seed = eval_seed(args.seed)
    if not args.video and display_available() and watch_in_window(make, agent.greedy_action, episodes, seed):
        return
    path = record_video(make, agent.greedy_action, episodes, seed, args.video or run_dir / "agent.mp4")
    print(f"saved video {path}")


def can_render(env_id, log=print):
    """--render needs a window: check once before training instead of failing mid-run."""
    if not display_available():
        log("--render: no display (DISPLAY/WAYLAND_DISPLAY unset); training without rendering")
        return False
    name_display_driver()
    try:
        env = dqn.make_env(env_id, render_mode="human")
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


def name_display_driver():
    """Tell SDL which display to use. Left to choose, it quietly falls back to an invisible
    off-screen driver when the X server is unreachable, and the user would see nothing."""
    if not os.environ.get("SDL_VIDEODRIVER"):
        os.environ["SDL_VIDEODRIVER"] = "x11" if os.environ.get("DISPLAY") else "wayland"


def display_available():
    """True where a window can plausibly open (X11 or Wayland)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def play_episodes(env, policy, episodes, seed, max_steps=WATCH_MAX_STEPS, log=print, frames=None):
    """Run greedy episodes on env; collect rgb frames into frames when given. Returns steps each."""
    lengths = []
    for i in range(episodes):
        s, _ = env.reset(seed=seed + i)
        if frames is not None:
            frames.append(env.render())
        for step in range(1, max_steps + 1):  # noqa: B007 (read after the loop)
            s, _, terminated, truncated, _ = env.step(policy(s))
            if frames is not None:
                frames.append(env.render())
            if terminated or truncated:
                break
        lengths.append(step)
        log(f"watch episode {i + 1}/{episodes}: pole stayed up for {step} steps")
    return lengths


def watch_in_window(make_env, policy, episodes, seed, log=print):
    """Play in a real window at the env's own speed. Returns False if no window could open."""
    name_display_driver()
    try:
        env = make_env(render_mode="human")
        try:
            play_episodes(env, policy, episodes, seed, log=log)
        finally:
            env.close()
        return True
    except Exception as e:  # pygame.error and friends: no usable display after all
        log(f"no window could open ({str(e).splitlines()[0] if str(e) else type(e).__name__}); recording instead")
        return False


def record_video(make_env, policy, episodes, seed, path, log=print):
    """Record greedy episodes to path (.mp4 via ffmpeg, else .gif). Returns the path written."""
    import imageio.v2 as imageio

    os.environ["SDL_VIDEODRIVER"] = "dummy"  # frames are drawn off-screen: no display needed
    env = make_env(render_mode="rgb_array")
    frames = []
    try:
        play_episodes(env, policy, episodes, seed, log=log, frames=frames)
    finally:
        env.close()
    path = Path(path)
    if path.suffix.lower() == ".mp4" and not ffmpeg_available():
        path = path.with_suffix(".gif")
        log("ffmpeg is not available: writing a GIF instead")
    fps = env.metadata.get("render_fps", 50)
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            imageio.mimsave(tmp, frames[::2], format="GIF", duration=2000 / fps, loop=0)
        else:
            imageio.mimsave(tmp, frames, format="FFMPEG", fps=fps, macro_block_size=8)
    return path


def ffmpeg_available():
    """True when imageio's ffmpeg plugin can find an ffmpeg binary."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except Exception:
        return False
