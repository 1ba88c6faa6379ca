"""Learning CartPole from pixels: the blog's closing idea, as `python dqn.py --pixels`.

The blog ends by noting that the state could be a picture of the screen instead of the
four numbers, and that only the network would have to change. That is nearly true: the
blog's DQN learns from screens once three things are added, all in this file, and
PixelDQN (a subclass of dqn.DQN) puts them together.

1. Frames a network can use (preprocess, PixelObservation). The env draws its screen at
   300x200 (SCREEN_SIZE), a quarter of its default pixels, and each colour screen
   becomes a 21x41 grey image, bright on black, of an 84x82 window that follows the cart
   (found in the image, not read from the state). Following the cart spends the pixels on
   the pole, whose angle and turning are what balancing needs and are sub-pixel changes
   on a coarse view of the whole screen. The price: the view shows neither where the cart
   is on the track nor how fast it goes (the background is blank), so --track-strip
   gives its bottom rows to the cart's row of the whole screen. One frame shows where the pole
   is but not where it is going, so the observation stacks the last FRAME_STACK frames:
   motion is the difference between them. Each action is held for FRAME_SKIP frames,
   which halves the drawing and makes the motion between frames larger.
2. A convolutional q_net (conv_q_net): two strided convolutions read the stack, then the
   blog's Linear-ReLU-Linear head gives one value per action.
3. A compact replay memory (FrameMemory): frames are kept as uint8, and since the next
   observation s_ is s shifted by one new frame, each row keeps FRAME_STACK + 1 frames
   rather than two full stacks.

docs/pixels.md has the preset's choices and the measured results.
"""

import collections
import functools
import os

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

import dqn
from beyond import tasks
from beyond.deep import autograd_update

# Drawing at 600x400, CartPole's default, takes most of a pixel step; at 300x200 the
# whole pole still shows (the cart's and pole's widths are fixed in pixels, its length scales).
SCREEN_SIZE = (300, 200)  # width, height
SCREEN_ROWS = slice(34, 118)  # from the pole's tip when upright down past the cart's bottom
CART_ROW = 105  # a screen row that crosses the cart and nothing else that is dark
VIEW_WIDTH = 82  # pixels around the cart's centre: the 50-pixel cart and the pole's tip at 12 degrees
# average 4x2 pixel blocks: the 84x82 view becomes 21x41. conv_q_net's two 5x5 stride-2
# convolutions reach every pixel of a 21x41 image; of a 20x40 one they never read the
# last 3 rows and columns.
BLOCK = (4, 2)
TRACK_ROWS = 2  # --track-strip: the view's bottom rows (the cart's lower half) show the whole track instead
TRACK_MARGIN = 14  # background added at each end of the 300-pixel track row: 328 pixels make 41 blocks of 8
DISPLAY_SCALE = 2  # render() shows people the small screen at CartPole's usual 600x400
FRAME_STACK = 4
FRAME_SKIP = 2
# Saved in pixel checkpoints: a change to what preprocess() shows the net, even one that
# keeps the shape, gets a new number, and --play refuses a checkpoint made for another.
PREPROCESSING_VERSION = 2  # 1: a 160x120 view of the 600x400 screen in 20x40


def preprocess(frame, track_strip=False):
    """A 200x300x3 rgb CartPole screen -> a (21, 41) uint8 image of the cart and pole, bright on black.

    track_strip: the last TRACK_ROWS rows show where the cart is on the whole track (whole_track).
    """
    # The blue channel alone separates everything from the white background: the cart is
    # 0, the pole 101, the background 255. Past the screen's edge counts as background.
    screen = frame[SCREEN_ROWS, :, 2]
    dark = np.flatnonzero(screen[CART_ROW - SCREEN_ROWS.start] < 50)  # the cart, found in the image
    centre = int(dark.mean()) if len(dark) else screen.shape[1] // 2
    half = VIEW_WIDTH // 2
    padded = np.full((screen.shape[0], screen.shape[1] + VIEW_WIDTH), 255, np.uint16)
    padded[:, half : half + screen.shape[1]] = screen
    view = padded[:, centre : centre + VIEW_WIDTH]  # screen columns centre - half .. centre + half
    rows, cols = view.shape[0] // BLOCK[0], view.shape[1] // BLOCK[1]
    block_sums = view.reshape(rows, BLOCK[0], -1).sum(1).reshape(rows, cols, BLOCK[1]).sum(2)
    image = (255 - block_sums // (BLOCK[0] * BLOCK[1])).astype(np.uint8)  # inverted: empty space is 0
    if track_strip:
        image[-TRACK_ROWS:] = whole_track(frame, image.shape[1])
    return image


def frame_shape():
    """(height, width) of one preprocessed frame."""
    return preprocess(np.zeros((SCREEN_SIZE[1], SCREEN_SIZE[0], 3), np.uint8)).shape


def whole_track(frame, width):
    """The cart's row of the whole screen in width blocks, bright on black: where the cart is on the track.

    The close-up follows the cart, so it cannot show this, and driving off the track is how
    most of its agents fail. A 1-pixel move of the cart changes an edge block by 1/8 of its range.
    """
    row = np.pad(frame[CART_ROW, :, 2], TRACK_MARGIN, constant_values=255).astype(np.uint16)
    return (255 - row.reshape(width, -1).sum(1) // (row.size // width)).astype(np.uint8)


class PixelObservation(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Replace the env's observation with its last frame_stack preprocessed screens.

    Each action is repeated for frame_skip frames (the rewards add up); info["frames"]
    says how many frames an action lasted, so train() counts real env steps.
    """

    RESUME_STATE = ("frames",)  # the stack of the episode under way; the rest are settings

    def __init__(self, env, frame_stack=FRAME_STACK, frame_skip=FRAME_SKIP, track_strip=False):
        # recorded so that env.spec can make this env again, as gymnasium's own wrappers can
        gym.utils.RecordConstructorArgs.__init__(
            self, frame_stack=frame_stack, frame_skip=frame_skip, track_strip=track_strip
        )
        gym.Wrapper.__init__(self, env)
        self.frame_skip, self.track_strip = frame_skip, track_strip
        env.unwrapped.screen_width, env.unwrapped.screen_height = SCREEN_SIZE  # read at the first render
        self.frames = collections.deque(maxlen=frame_stack)
        height, width = frame_shape()
        self.observation_space = gym.spaces.Box(0, 255, (frame_stack, height, width), np.uint8)
        # a video of these steps plays at real speed when each shows frame_skip frames' worth of time
        self.metadata = {**env.metadata, "render_fps": env.metadata.get("render_fps", 50) / frame_skip}
        self.metadata["render_modes"] = ["rgb_array"]  # the observation is the rgb_array screen

    def render(self):
        """The screen the agent reads, at twice its size for people (windows, videos, the panel)."""
        return self.env.render().repeat(DISPLAY_SCALE, 0).repeat(DISPLAY_SCALE, 1)

    def reset(self, **kwargs):
        """Reset the env; the first observation is its first frame, repeated."""
        _, info = self.env.reset(**kwargs)
        frame = preprocess(self.env.render(), self.track_strip)
        self.frames.extend([frame] * self.frames.maxlen)  # no motion yet: the first frame, repeated
        return np.stack(self.frames), info

    def step(self, action):
        """Hold action for frame_skip frames (fewer if the episode ends); observe the new stack."""
        total_reward = 0.0
        for frames in range(1, self.frame_skip + 1):  # noqa: B007 (read after the loop)
            _, reward, terminated, truncated, info = self.env.step(action)
            total_reward += reward
            if terminated or truncated:
                break
        self.frames.append(preprocess(self.env.render(), self.track_strip))
        return np.stack(self.frames), total_reward, terminated, truncated, dict(info, frames=frames)


def reads_pixels(n_states):
    """Is pixels or not, from what an agent (or a checkpoint's meta) reads: a frame stack's shape, or a state size."""
    return not isinstance(n_states, int)


def make_env(env_id=dqn.ENV_ID, unwrapped=True, render_mode=None, track_strip=False):
    """dqn.make_env's env seen through its screen; render_mode="human" also shows a window."""
    if not tasks.display_available():
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # draw off-screen, without SDL's warnings
    env = PixelObservation(tasks.make_env(env_id, unwrapped, render_mode="rgb_array"), track_strip=track_strip)
    return gym.wrappers.HumanRendering(env) if render_mode == "human" else env


def env_maker(agent):
    """The make_env whose observations agent reads: the screen for a PixelDQN, else the state."""
    if reads_pixels(agent.n_states):
        return functools.partial(make_env, track_strip=agent.track_strip)
    return tasks.make_env


def true_state_reward(reward_fn):
    """The blog's shaped reward reads x and theta from s_; from pixels, read them from the simulator."""
    return lambda env, s_, reward: reward_fn(env, env.unwrapped.state, reward)


class conv_q_net(nn.Module):
    """q_net for a stack of frames: two strided convolutions, then Linear-ReLU-Linear."""

    def __init__(self, shape, n_actions, hidden=128):
        super().__init__()
        frames = shape[0]
        # PyTorch's default (Kaiming-uniform) init, not the blog's N(0, 0.1): with 100 to 800
        # inputs per unit, N(0, 0.1) is 2 to 5 times that scale in every layer, and it compounds.
        self.conv = nn.Sequential(
            nn.Conv2d(frames, 16, kernel_size=5, stride=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, kernel_size=5, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        n_features = self.conv(torch.zeros(1, *shape)).shape[1]
        self.fc = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_actions))

    def forward(self, x):
        """Q(s, a) for every action: x is (batch, frames, height, width) uint8 or 0..255 floats."""
        return self.fc(self.conv(x.float() / 255))


class FrameReplayMemory(dqn.ReplayMemory):
    """The replay memory of frame stacks: [a, r] rows beside uint8 frames, s a row's first frames and s_ its last.

    For a one-step transition s_ is s shifted by one frame, so a row needs just one frame
    more than s. A memory whose s_ lies further on (beyond/nstep.py's) keeps all of s_.
    """

    RESUME_STATE = ("frames",)  # what --resume saves beyond the blog's memory
    next_state_shifts_one_frame = True  # beyond/nstep.py's rows say False

    def __init__(self, capacity, shape, **options):
        super().__init__(capacity, tuple(shape), **options)
        frames, height, width = self.n_states
        self.new_frames = 1 if self.next_state_shifts_one_frame else frames
        self.frames = np.zeros((capacity, frames + self.new_frames, height, width), dtype=np.uint8)

    def make_rows(self):
        """[a, r] rows; the frames of s and s_ are kept apart, as uint8."""
        return np.zeros((self.capacity, 2), dtype=np.float32)

    def write(self, index, s, a, r, s_, terminated):
        """Write s and the frames s_ adds to the frames, [a, r] to row index."""
        n_frames = self.n_states[0]
        self.frames[index, :n_frames], self.frames[index, n_frames:] = s, s_[-self.new_frames :]
        self.rows[index] = a, r
        self.terminated[index] = terminated

    def batch_at(self, index):
        """Rows index as a dqn.Batch, s and s_ as uint8 frames (conv_q_net scales them)."""
        frames, rows, n_frames = self.frames[index], self.rows[index], self.n_states[0]
        return dqn.Batch(
            torch.from_numpy(frames[:, :n_frames]),
            torch.from_numpy(rows[:, :1].astype(np.int64)),
            torch.from_numpy(rows[:, 1:]),
            torch.from_numpy(frames[:, -n_frames:]),
            torch.from_numpy(self.terminated[index]),
        )


class PixelDQN(dqn.DQN):
    """The blog's DQN on a stack of screens: conv_q_net, a FrameReplayMemory, and autograd."""

    memory_class = FrameReplayMemory

    def __init__(self, shape, n_actions, seed=None, device="cpu", track_strip=False, **overrides):
        self.device = torch.device(device)  # where the CNN runs; the memory stays in host RAM
        self.track_strip = track_strip  # what its screens show (preprocess): its envs must show the same
        super().__init__(tuple(shape), n_actions, seed, **overrides)

    def make_net(self):
        """A fresh conv_q_net on the agent's device."""
        return conv_q_net(self.n_states, self.n_actions, self.hidden).to(self.device)

    def greedy_action(self, s):
        """argmax_a Q(s, a) by the CNN, for one stack of frames."""
        with torch.inference_mode():
            return int(self.eval_net(torch.from_numpy(s)[None].to(self.device)).argmax())

    def update(self, batch):
        """dqn.DQN.update with loss.backward(), as the blog does.

        The MLP's gradients are written out by hand in q_net.backprop; for a CNN autograd is
        the right tool, and its bookkeeping is small next to the convolutions themselves.
        """
        tensors = {name: t.to(self.device) for name, t in batch._asdict().items() if isinstance(t, torch.Tensor)}
        return autograd_update(self, batch._replace(**tensors))
