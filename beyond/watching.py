"""Watching the agent: in a window where there is a display, else recorded to a video.

Every watched frame carries the agent's Q-values (QValueOverlay), and after training a
learning video plays the weights saved along the way. Also --render's window check.
"""

import contextlib
import functools
import io
import os
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from beyond import tasks
from beyond.evaluation import eval_seed
from beyond.files import atomic_path
from beyond.pixels import env_maker

WATCH_MAX_STEPS = 500
PANEL_HEIGHT = 120  # below the env's picture
MACRO_BLOCK = 16  # MP4 frames are padded to multiples of this (framed_for_a_player)
PLAYER_MARGIN = 88  # blank rows below each MP4 frame: a player's controls and their shading cover the bottom of a video
FRAMES_HEIGHT = 56  # a pixel agent's frame stack, below the panel
CAPTION_HEIGHT = 32  # above each part of the learning video
GIF_PART_FRAMES = 80  # a learning GIF keeps at most this many (every other) frames of each part
GREY, BLUE, ORANGE, RED, GREEN = (150, 150, 150), (90, 120, 170), (230, 120, 20), (200, 40, 40), (40, 150, 60)


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


# ---------------------------------------------------------------------------------------
# The Q-value overlay
# ---------------------------------------------------------------------------------------
def q_values(agent, s):
    """Q(s, a) for every action by the agent's eval_net, as numpy; draws nothing from its rng."""
    device = next(agent.eval_net.parameters()).device
    with torch.inference_mode():
        return agent.eval_net(torch.as_tensor(np.asarray(s), dtype=torch.float32, device=device)[None])[0].cpu().numpy()


def cartpole_gauges(s, base):
    """The cart's position and the pole's angle (from the env's own state), between their failure limits."""
    x, theta = float(base.state[0]), float(base.state[2])
    x_limit, theta_limit = base.x_threshold, base.theta_threshold_radians
    return [
        Gauge("cart x", x, -x_limit, x_limit, (), "{:+.2f} m", goal=False),
        Gauge("pole", np.degrees(theta), -np.degrees(theta_limit), np.degrees(theta_limit), (), "{:+.1f}°", goal=False),
    ]


def acrobot_gauges(s, base):
    """How high the tip is, against the line it must reach, and the first joint's speed."""
    cos1, sin1, cos2, sin2 = s[:4]
    tip = -cos1 - (cos1 * cos2 - sin1 * sin2)
    return [
        Gauge("tip height", float(tip), -2.0, 2.0, (1.0,), "{:+.2f}"),
        Gauge("joint 1 speed", float(s[4]), -4 * np.pi, 4 * np.pi, (), "{:+.1f}"),
    ]


def mountain_car_gauges(s, base):
    """The car's position against the flag, and its velocity."""
    return [
        Gauge("position", float(s[0]), base.min_position, base.max_position, (base.goal_position,), "{:+.2f}"),
        Gauge("velocity", float(s[1]), -base.max_speed, base.max_speed, (), "{:+.3f}"),
    ]


def lunar_lander_gauges(s, base):
    """Where the lander is across, against the pad's flags, how far it leans, and how many legs touch down."""
    return [
        Gauge("x", float(s[0]), -1.0, 1.0, (-0.2, 0.2), "{:+.2f}"),
        Gauge("tilt", float(np.degrees(s[4])), -90.0, 90.0, (), "{:+.0f}°"),
        Gauge("legs down", float(s[6] + s[7]), 0.0, 2.0, (2.0,), "{:.0f}"),
    ]


@dataclass
class Gauge:
    """One readout of the state: a value on a scale from low to high, with marks (a goal, or failure limits)."""

    name: str
    value: float
    low: float
    high: float
    marks: tuple  # where to get to (green)
    fmt: str
    goal: bool = True  # False: the scale's ends are failure limits (red), as on CartPole


# Each env family: (the names of its actions, the readouts of its state that make sense).
READOUTS = {
    "CartPole": (["push left", "push right"], cartpole_gauges),
    "Acrobot": (["torque -1", "no torque", "torque +1"], acrobot_gauges),
    "MountainCar": (["push left", "no push", "push right"], mountain_car_gauges),
    "LunarLander": (["nothing", "left engine", "main engine", "right engine"], lunar_lander_gauges),
}


def readouts_for(env):
    """READOUTS' row for the env (by its id's family, or CartPole's by its state), or None."""
    spec = env.unwrapped.spec
    family = spec.id.split("-")[0] if spec else None
    if tasks.is_cartpole_env(env):
        family = "CartPole"
    return READOUTS.get(family)


def panel_values(agent, env, s, step, episode=None, episodes=None):
    """What the panel shows for state s: Q-values, the greedy action, step, episode and the env's readouts."""
    q = q_values(agent, s)
    values = dict(q=q, action=int(np.argmax(q)), step=step, episode=episode, episodes=episodes, gauges=[])
    readouts = readouts_for(env)
    names, gauges = readouts if readouts and len(readouts[0]) == len(q) else (None, None)
    values["names"] = names or [f"action {a}" for a in range(len(q))]
    if np.asarray(s).ndim == 3:  # a stack of frames: show what the network sees; the gauges read the env's state
        values["frames"] = np.asarray(s)
    state = None if np.asarray(s).ndim == 3 else np.asarray(s)
    if gauges and (state is not None or gauges is cartpole_gauges) and getattr(env.unwrapped, "state", 0) is not None:
        values["gauges"] = gauges(state, env.unwrapped)
    return values


# What the videos draw and what watching prints, in English; beyond/chinese.py has them in Chinese.
# names: {English: shown} for the actions' and the readouts' names.
WORDS = dict(
    q_values="Q-values (greedy: {action})",
    step="step {step}",
    episode="episode {episode} of {episodes}",
    network_sees="what the network sees:",
    caption="after {env_steps:,} env steps (episode {episode}): greedy return {total:.0f}",
    watched="watch episode {i}/{n}: {summary}",
    pole_up="pole stayed up for {steps} steps",
    returned="return {total:g} in {steps} steps",
    learning_part="learning video: {caption}",
    names={},
)
CAPTION = WORDS["caption"]


class Writer:
    """draw.text in black at one size, in a font that has the text's characters (a CJK one for Chinese)."""

    def __init__(self, draw, size=14):
        self.draw, self.size = draw, size

    def __call__(self, xy, text, fill="black"):
        self.draw.text(xy, text, fill=fill, font=font_of(self.size, text))


def draw_panel(frame, values, words=WORDS):
    """frame (H, W, 3) with a panel below it, drawn from panel_values(); the frame itself is untouched."""
    height, width = frame.shape[:2]
    frames = values.get("frames")
    image = Image.new("RGB", (width, height + PANEL_HEIGHT + (FRAMES_HEIGHT if frames is not None else 0)), "white")
    image.paste(Image.fromarray(np.ascontiguousarray(frame[..., :3])), (0, 0))
    draw = ImageDraw.Draw(image)
    write = Writer(draw)
    draw.line([(0, height), (width, height)], fill=GREY)
    draw_q_bars(draw, write, values, 10, height + 8, width // 2 - 20, words)
    draw_status(draw, write, values, width // 2 + 10, height + 8, width // 2 - 20, words)
    if frames is not None:
        write((10, height + PANEL_HEIGHT + 2), words["network_sees"])
        for i, f in enumerate(frames):
            thumb = Image.fromarray(f).resize((f.shape[1] * 2, f.shape[0] * 2), Image.NEAREST)
            image.paste(thumb, (180 + i * (thumb.width + 8), height + PANEL_HEIGHT + 8))
    return np.asarray(image)


def draw_q_bars(draw, write, values, x, y, width, words=WORDS):
    """One bar per action from zero to its Q-value, the greedy action highlighted."""
    q, names = values["q"], [words["names"].get(name, name) for name in values["names"]]
    write((x, y), words["q_values"].format(action=names[values["action"]]))
    lo, hi = min(0.0, q.min()), max(0.0, q.max())
    span = (hi - lo) or 1.0
    label_w, number_w = 80, 60
    bar_x, bar_w = x + label_w, width - label_w - number_w
    row = min(26, (PANEL_HEIGHT - 30) // len(q))
    for a, value in enumerate(q):
        top = y + 24 + a * row
        zero, end = (bar_x + bar_w * (v - lo) / span for v in (0.0, value))
        colour = ORANGE if a == values["action"] else BLUE
        write((x, top), names[a])
        draw.rectangle([min(zero, end), top + 2, max(zero, end), top + row - 6], fill=colour)
        write((bar_x + bar_w + 6, top), f"{value:.2f}", fill=colour)


def draw_status(draw, write, values, x, y, width, words=WORDS):
    """The step and episode, then the env's readouts as gauges between their limits or towards their goal."""
    text = words["step"].format(step=values["step"])
    if values["episode"] is not None:
        text += "    " + words["episode"].format(episode=values["episode"], episodes=values["episodes"])
    write((x, y), text)
    spacing = min(36, (PANEL_HEIGHT - 40) // max(len(values["gauges"]), 1))  # three gauges fit too
    for i, gauge in enumerate(values["gauges"]):
        top = y + 30 + i * spacing
        write((x, top), f"{words['names'].get(gauge.name, gauge.name)} {gauge.fmt.format(gauge.value)}")
        left, right, mid = x + 150, x + width - 10, top + 9
        at = functools.partial(on_scale, gauge, left, right)
        draw.line([(left, mid), (right, mid)], fill=GREY, width=2)
        ends = () if gauge.goal else (gauge.low, gauge.high)  # a failure limit at each end
        for mark in (*gauge.marks, *ends):
            draw.line([(at(mark), mid - 7), (at(mark), mid + 7)], fill=GREEN if gauge.goal else RED, width=2)
        draw.ellipse([at(gauge.value) - 5, mid - 5, at(gauge.value) + 5, mid + 5], fill=ORANGE)


def on_scale(gauge, left, right, value):
    """The x at which value sits on gauge's scale drawn from left to right (clipped to its ends)."""
    return left + (right - left) * (np.clip(value, gauge.low, gauge.high) - gauge.low) / (gauge.high - gauge.low)


def font_of(size, text=""):
    """Pillow's own font at size (a small bitmap font on Pillow builds without FreeType).

    For text with Chinese characters, which Pillow's font lacks, an installed CJK font where there is one.
    """
    if not text.isascii() and cjk_font():
        return cjk_pillow_font(size)
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


# Fonts with Chinese characters, most common first: Debian's fonts-noto-cjk, fonts-wqy-zenhei, then Windows and macOS.
CJK_FAMILIES = (
    *("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei"),
    *("Microsoft YaHei", "SimHei", "PingFang SC"),
)


@functools.cache
def cjk_font():
    """(family, file) of the first installed font of CJK_FAMILIES, as matplotlib finds it, or None."""
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in installed:
            return family, font_manager.findfont(font_manager.FontProperties(family=family))
    return None


@functools.cache
def cjk_pillow_font(size):
    """cjk_font() for Pillow; in a font collection (.ttc), the face of that family."""
    family, path = cjk_font()
    for index in range(16):
        try:
            font = ImageFont.truetype(path, size, index=index)
        except OSError:  # past the collection's last face
            break
        if font.getname()[0] == family:
            return font
    return ImageFont.truetype(path, size)


class QValueOverlay(gym.Wrapper):
    """render() returns the env's picture with the agent's Q-values, the step and the episode below it."""

    def __init__(self, env, agent, episodes=None, words=WORDS):
        super().__init__(env)
        self.agent, self.episodes, self.words = agent, episodes, words
        self.episode, self.step_count, self.obs = 0, 0, None

    def reset(self, **kwargs):
        self.obs, info = self.env.reset(**kwargs)
        self.episode, self.step_count = self.episode + 1, 0
        return self.obs, info

    def step(self, action):
        self.obs, reward, terminated, truncated, info = self.env.step(action)
        self.step_count += 1
        return self.obs, reward, terminated, truncated, info

    def render(self):
        episode = self.episode if self.episodes else None
        values = panel_values(self.agent, self.env, self.obs, self.step_count, episode, self.episodes)
        return draw_panel(self.env.render(), values, self.words)


def captioned(frame, text):
    """frame with a strip of text above it."""
    image = Image.new("RGB", (frame.shape[1], frame.shape[0] + CAPTION_HEIGHT), (30, 30, 30))
    image.paste(Image.fromarray(frame), (0, CAPTION_HEIGHT))
    ImageDraw.Draw(image).text((10, 7), text, fill="white", font=font_of(16, text))
    return np.asarray(image)


# ---------------------------------------------------------------------------------------
# Playing, windows and videos
# ---------------------------------------------------------------------------------------
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
    final = {k: v.clone() for k, v in agent.eval_net.state_dict().items()}
    env = QValueOverlay(env_maker(agent)(env_id, unwrapped=False, render_mode="rgb_array"), agent, words=words)
    try:
        with VideoFile(path, env.metadata.get("render_fps", 50), log) as video:
            for moment in moments:
                agent.eval_net.load_state_dict(moment["weights"])
                caption = record_part(video, env, agent, moment, seed, words["caption"])
                log(words["learning_part"].format(caption=caption))
    finally:
        agent.eval_net.load_state_dict(final)
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


def embedded(path):
    """What plays path inside a notebook: an MP4 as a <video> in the page, a GIF as an image."""
    from IPython.display import Image, Video

    if Path(path).suffix.lower() == ".gif":
        return Image(filename=str(path))
    return Video(str(path), embed=True, html_attributes="controls loop")


def shown(figure):
    """What shows a matplotlib figure inside a notebook whatever the backend: its PNG, as an image.

    A notebook shows figures by itself only with the inline backend; with MPLBACKEND=Agg
    set, it would show nothing. The figure is closed, so the inline backend does not show it twice.
    """
    import matplotlib.pyplot as plt
    from IPython import display

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return display.Image(data=buffer.getvalue(), format="png")


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


def name_display_driver():
    """Tell SDL which display to use. Left to choose, it quietly falls back to an invisible
    off-screen driver when the X server is unreachable, and the user would see nothing."""
    if not os.environ.get("SDL_VIDEODRIVER"):
        os.environ["SDL_VIDEODRIVER"] = "x11" if os.environ.get("DISPLAY") else "wayland"
