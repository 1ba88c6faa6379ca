"""What a run may cost: the memory its settings take, estimated before anything is built.

A setting that would fill the machine's memory (a replay memory of a billion rows, a hidden
layer of fifty million units) is refused in one line before training, whether it came from
a flag or from a file. The same estimate caps how much of a resume file is read.
"""

import os

import torch

import dqn
from beyond.deep import deep_q_net
from beyond.dueling import dueling_q_net, with_dueling_head
from beyond.hooks import MAX_SNAPSHOTS
from beyond.pixels import FRAME_STACK, conv_q_net

LARGEST_COUNT = 10**9  # episodes, env steps, schedules: a run of more than this is a typo, not a plan
LARGEST_EVAL_EPISODES = 10_000  # episodes of one evaluation or confirmation
LARGEST_WATCH = 100  # episodes watched (or recorded) after training
LARGEST_REPLAY_RATIO = 64  # learn steps per env step that learns
LARGEST_HIDDEN_LAYERS = 8  # --hidden-layers: deeper than SB3's 2 is already a different program
STEPS_PER_EVAL_EPISODE = 5  # env steps of training, at least, for each episode of a periodic evaluation
LARGEST_SNAPSHOTS = MAX_SNAPSHOTS  # the learning video's moments: chosen among at most this many copies
# Copies of eval_net's weights a run holds: eval and target nets, the gradient, Adam's two
# moments, --averaged-policy's average, and the hooks' copies (the learning video's snapshots,
# the best, the last good, the solved).
WEIGHT_COPIES = 6 + MAX_SNAPSHOTS + 4


def physical_memory():
    """Bytes of RAM on this machine."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def net_parameters(obs_shape, n_actions, hidden, pixels, dueling, hidden_layers=1):
    """eval_net's parameter count, from a copy built on the meta device, which allocates nothing."""
    with torch.device("meta"):
        if pixels:
            net = conv_q_net(obs_shape, n_actions, hidden)
        elif hidden_layers > 1:
            net = deep_q_net(obs_shape[0], n_actions, hidden, hidden_layers)
        else:
            net = (dueling_q_net if dueling else dqn.q_net)(obs_shape[0], n_actions, hidden)
        if dueling and (pixels or hidden_layers > 1):  # as DuelingPixels and DuelingHiddenLayers make it
            net = with_dueling_head(net)
    return sum(p.numel() for p in net.parameters())


def memory_bytes(args, obs_shape, n_actions):
    """About how many bytes a run with these settings holds at most: its replay memory, nets and copies."""
    rows = args.memory_capacity
    if args.pixels:  # FrameReplayMemory: uint8 frames, FRAME_STACK + 1 a row (+ FRAME_STACK with n-step)
        frames = FRAME_STACK + (1 if args.n_step == 1 else FRAME_STACK)
        row = frames * obs_shape[1] * obs_shape[2] + 3 * 4
    else:  # [s, a, r, s_] and the terminated flag, float32
        row = (2 * obs_shape[0] + 3) * 4
    memory = rows * row + (32 * rows if args.prioritized else 0)  # the sum tree: 2 float64 nodes a leaf, rounded up
    parameters = net_parameters(obs_shape, n_actions, args.hidden, args.pixels, args.dueling, args.hidden_layers)
    weights = 4 * WEIGHT_COPIES * parameters
    # a sampled batch and its activations, a few times over
    batch = 8 * args.batch_size * (row + 4 * args.hidden * args.hidden_layers)
    return memory + weights + batch


def fits_in_memory(args, obs_shape, n_actions):
    """None if the run fits in this machine's memory; else a sentence on what it would take."""
    needed, available = memory_bytes(args, obs_shape, n_actions), physical_memory()
    if needed <= 0.8 * available:
        return None
    return f"needs about {needed / 2**30:,.1f} GiB of memory and this machine has {available / 2**30:,.1f} GiB"
