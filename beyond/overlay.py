"""The Q-value panel under every watched frame: the agent's Q-values, its greedy action, and per-task gauges.

QValueOverlay wraps an env so that each rendered frame carries the panel; the words it
draws (WORDS; beyond/chinese.py has them in Chinese) and the fonts it draws them in
(CJK ones for Chinese) live here too.
"""

import functools
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from beyond import tasks
from beyond.averaged import policy_net

PANEL_HEIGHT = 120  # below the env's picture
FRAMES_HEIGHT = 56  # a pixel agent's frame stack, below the panel
CAPTION_HEIGHT = 32  # above each part of the learning video
GREY, BLUE, ORANGE, RED, GREEN = (150, 150, 150), (90, 120, 170), (230, 120, 20), (200, 40, 40), (40, 150, 60)


def q_values(agent, s):
    """Q(s, a) for every action by the net the agent acts with, as numpy; draws nothing from its rng."""
    net = policy_net(agent)
    device = next(net.parameters()).device
    with torch.inference_mode():
        return net(torch.as_tensor(np.asarray(s), dtype=torch.float32, device=device)[None])[0].cpu().numpy()


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
    return pillow_font(size)


@functools.cache
def pillow_font(size):
    """Pillow's own font at size, loaded once: a font kept keeps its drawn glyphs, and text draws twice as fast."""
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
