"""Playing the greedy agent in a window, or into an MP4 or GIF; and the learning video, which plays
the copies of eval_net saved while it trained."""

import contextlib
import os
from pathlib import Path

import gymnasium as gym
import numpy as np

from beyond import tasks
from beyond.averaged import policy_net
from beyond.files import atomic_path
from beyond.hooks import weights_kept
from beyond.overlay import CAPTION, WORDS, QValueOverlay, captioned
from beyond.pixels import env_maker

WATCH_MAX_STEPS = 500
MACRO_BLOCK = 16  # MP4 frames are padded to multiples of this (framed_for_a_player)
PLAYER_MARGIN = 88  # blank rows below each MP4 frame: a player's controls and their shading cover the bottom of a video
GIF_PART_FRAMES = 80  # a learning GIF keeps at most this many (every other) frames of each part


def play_episodes(
    env, policy, episodes, seed, max_steps=WATCH_MAX_STEPS, log=print, on_frame=None, on_reset=None, words=WORDS
):
    """Run greedy episodes; each rendered frame goes to on_frame, if given. Returns (steps, return) each."""
    results = []
    for i in range(episodes):
        s, _ = env.reset(seed=seed + i)
        if on_reset:
            on_reset(i)
        if on_frame:
            on_frame(env.render())
        total = 0.0
        for step in range(1, max_steps + 1):  # noqa: B007 (read after the loop)
            s, r, terminated, truncated, _ = env.step(policy(s))
            total += r
            if on_frame:
                on_frame(env.render())
            if terminated or truncated:
                break
        results.append((step, total))
        if log:
            log(words["watched"].format(i=i + 1, n=episodes, summary=episode_summary(env, step, total, words)))
    return results


def episode_summary(env, steps, total, words=WORDS):
    """How a watched episode went: on CartPole, how long the pole stayed up; elsewhere, the return."""
    if tasks.is_cartpole_env(env):
        return words["pole_up"].format(steps=steps)
    return words["returned"].format(total=total, steps=steps)


def watch_in_window(make_env, policy, episodes, seed, title, log=print):
    """Play in a real window at the env's own speed. Returns False if no window could open."""
    import pygame

    name_display_driver()
    try:
        env = gym.wrappers.HumanRendering(make_env())  # shows what render() returns: the overlay too
        try:
            caption = lambda i: pygame.display.set_caption(f"DQN: {title}, episode {i + 1} of {episodes}")  # noqa: E731
            play_episodes(env, policy, episodes, seed, log=log, on_reset=caption)
        finally:
            env.close()
        return True
    except Exception as e:  # pygame.error and friends: no usable display after all
        log(f"no window could open ({str(e).splitlines()[0] if str(e) else type(e).__name__}); recording instead")
        return False


def record_video(env, policy, episodes, seed, path, log=print, words=WORDS):
    """Record greedy episodes on env (made with render_mode="rgb_array") to path. Returns the path written."""
    os.environ["SDL_VIDEODRIVER"] = "dummy"  # frames are drawn off-screen: no display needed
    try:
        with VideoFile(path, env.metadata.get("render_fps", 50), log) as video:
            play_episodes(env, policy, episodes, seed, log=log, on_frame=video.add, words=words)
    finally:
        env.close()
    return video.path


def record_learning_video(agent, moments, env_id, seed, path, log=print, words=WORDS):
    """One greedy episode of each snapshot in moments, captioned and overlaid, in one video. Returns its path.

    words: what it draws and prints (WORDS' keys); its caption is a format of env_steps, episode and
    total (the part's return).
    """
    os.environ["SDL_VIDEODRIVER"] = "dummy"
    env = QValueOverlay(env_maker(agent)(env_id, unwrapped=False, render_mode="rgb_array"), agent, words=words)
    try:
        with weights_kept(policy_net(agent)), VideoFile(path, env.metadata.get("render_fps", 50), log) as video:
            for moment in moments:
                policy_net(agent).load_state_dict(moment["weights"])
                caption = record_part(video, env, agent, moment, seed, words["caption"])
                log(words["learning_part"].format(caption=caption))
    finally:
        env.close()
    return video.path


def record_part(video, env, agent, moment, seed, caption=CAPTION):
    """One greedy episode of the agent as it is, captioned with moment; returns the caption."""
    # Played twice: unseen, for the return that the caption shows, then on camera.
    ((_, total),) = play_episodes(env, agent.greedy_action, 1, seed, log=None)
    text = caption.format(env_steps=moment["env_steps"], episode=moment["episode"], total=total)
    shown = 2 * GIF_PART_FRAMES if video.gif else WATCH_MAX_STEPS
    play_episodes(env, agent.greedy_action, 1, seed, shown, None, lambda frame: video.add(captioned(frame, text)))
    return text


class VideoFile:
    """Frames streamed to .mp4 through ffmpeg, or to a GIF of every other frame.

    The file appears once it is complete, or not at all.
    """

    def __init__(self, path, fps, log=print):
        self.path, self.fps = Path(path), fps
        if self.path.suffix.lower() == ".mp4" and not ffmpeg_available():
            self.path = self.path.with_suffix(".gif")
            log("ffmpeg is not available: writing a GIF instead")
        self.gif, self.frames = self.path.suffix.lower() == ".gif", 0

    def __enter__(self):
        import imageio.v2 as imageio

        self.stack = contextlib.ExitStack()
        tmp = self.stack.enter_context(atomic_path(self.path))
        if self.gif:
            self.writer = imageio.get_writer(tmp, format="GIF", duration=2000 / self.fps, loop=0)
        else:
            self.writer = imageio.get_writer(tmp, format="FFMPEG", fps=self.fps, macro_block_size=MACRO_BLOCK)
        self.stack.callback(self.writer.close)  # runs before atomic_path renames the file
        return self

    def add(self, frame):
        if not (self.gif and self.frames % 2):
            self.writer.append_data(frame if self.gif else framed_for_a_player(frame))
        self.frames += 1

    def __exit__(self, *exc):
        return self.stack.__exit__(*exc)


def framed_for_a_player(frame, margin=PLAYER_MARGIN, block=MACRO_BLOCK):
    """frame with white rows below (margin, then up to a multiple of block) and columns right (to a multiple).

    The margin keeps a notebook's or browser's video controls off the Q-value panel; the
    encoder works on 16x16 blocks, and imageio would otherwise resize the frame, with a warning.
    """
    height, width = frame.shape[:2]
    pad = ((0, margin + (-(height + margin)) % block), (0, -width % block), (0, 0))
    return np.pad(frame[..., :3], pad, constant_values=255)


def ffmpeg_available():
    """True when imageio's ffmpeg plugin can find an ffmpeg binary."""
    try:
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
        return True
    except Exception:
        return False


def name_display_driver():
    """Tell SDL which display to use. Left to choose, it quietly falls back to an invisible
    off-screen driver when the X server is unreachable, and the user would see nothing."""
    if not os.environ.get("SDL_VIDEODRIVER"):
        os.environ["SDL_VIDEODRIVER"] = "x11" if os.environ.get("DISPLAY") else "wayland"
