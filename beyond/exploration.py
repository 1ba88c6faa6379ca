"""Where the agent went: the states a run visited, early, middle and late, and the greedy action at the end.

A learner cannot see exploration in a reward curve: on MountainCar every episode before
the first success scores −200 whatever the agent tried. On a task whose state can be read
on a plane (MountainCar's position and velocity; CartPole's cart position and pole angle),
VisitedStates records each state the training env shows, and exploration_figure draws them
in thirds of the run, with the task's marks (the flag, or the failure limits), next to the
action the trained agent picks at each point of the same plane.

    python bench/exploration.py --env MountainCar-v0 --seed 1000   # docs/exploration_*.png
"""

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from beyond.averaged import policy_net


@dataclass(frozen=True)
class Plane:
    """Two readouts of a task's state to plot against each other, and the lines that matter on them."""

    x: int  # index of the state's readout on the horizontal axis
    y: int
    x_label: str
    y_label: str
    marks: tuple  # (x, label) of vertical lines: a goal, or failure limits
    actions: tuple  # the names of the actions
    bounds: tuple  # ((x low, x high), (y low, y high)): the whole plane the state can be on


def mountain_car_plane(base):
    """MountainCar's position and velocity, the flag at the goal."""
    bounds = ((base.min_position, base.max_position), (-base.max_speed, base.max_speed))
    return Plane(0, 1, "position", "velocity", ((base.goal_position, "flag"),), ("left", "none", "right"), bounds)


def cartpole_plane(base):
    """CartPole's cart position and pole angle, between their failure limits."""
    x, theta = base.x_threshold, base.theta_threshold_radians
    marks = ((-x, "track's end"), (x, "track's end"))
    return Plane(0, 2, "cart position", "pole angle (rad)", marks, ("left", "right"), ((-x, x), (-theta, theta)))


PLANES = {"MountainCar": mountain_car_plane, "CartPole": cartpole_plane}


def plane_of(env):
    """The env's Plane, or None where its state cannot be read on one."""
    spec = env.unwrapped.spec
    family = spec.id.split("-")[0] if spec else None
    return PLANES[family](env.unwrapped) if family in PLANES else None


class VisitedStates(gym.Wrapper):
    """Records the plane's two readouts of every state the env shows (at most `most` of them)."""

    def __init__(self, env, plane, most=1_000_000):
        super().__init__(env)
        self.plane, self.visits, self.count = plane, np.zeros((most, 2), np.float32), 0

    def record(self, s):
        if self.count < len(self.visits):
            self.visits[self.count] = s[self.plane.x], s[self.plane.y]
            self.count += 1

    def reset(self, **kwargs):
        s, info = self.env.reset(**kwargs)
        self.record(s)
        return s, info

    def step(self, action):
        s, reward, terminated, truncated, info = self.env.step(action)
        self.record(s)
        return s, reward, terminated, truncated, info


def greedy_actions(agent, plane, xs, ys, state_size):
    """The agent's greedy action at each (x, y) of the grid, the state's other readouts at 0."""
    states = np.zeros((len(ys), len(xs), state_size), np.float32)
    states[..., plane.x], states[..., plane.y] = np.meshgrid(xs, ys)
    with torch.inference_mode():
        q = policy_net(agent)(torch.from_numpy(states.reshape(-1, state_size))).numpy()
    return q.argmax(1).reshape(len(ys), len(xs))


def exploration_figure(runs, plane, thirds=("early", "middle", "late")):
    """One row per run: its visits in thirds of its env steps, then its final greedy action on the plane.

    runs: [(title, visits (n, 2), agent, state_size)].
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap, LogNorm

    (x0, x1), (y0, y1) = plane.bounds
    bins = [np.linspace(x0, x1, 72), np.linspace(y0, y1, 60)]
    figure, axes = plt.subplots(len(runs), 4, figsize=(15, 3.4 * len(runs)), squeeze=False)
    colours = ListedColormap(["tab:blue", "tab:grey", "tab:orange"][: len(plane.actions)])
    for row, (title, visits, agent, state_size) in zip(axes, runs, strict=True):
        for ax, part, name in zip(row[:3], np.array_split(visits, 3), thirds, strict=True):
            ax.hist2d(part[:, 0], part[:, 1], bins=bins, norm=LogNorm(), cmap="viridis")
            ax.set_title(f"{name} third: {len(part):,} states", fontsize=9)
        xs, ys = (np.linspace(*edges[[0, -1]], 80) for edges in bins)
        actions = greedy_actions(agent, plane, xs, ys, state_size)
        row[3].pcolormesh(xs, ys, actions, cmap=colours, vmin=0, vmax=len(plane.actions) - 1, shading="auto")
        row[3].set_title("greedy action at the end", fontsize=9)
        row[0].annotate(title, (0, 1.13), xycoords="axes fraction", fontsize=10, weight="bold")  # the row's run
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i)) for i in range(len(plane.actions))]
        row[3].legend(handles, plane.actions, fontsize=7, loc="lower left")
        for ax in row:
            for x, _ in plane.marks:
                ax.axvline(x, color="red", lw=1.5, ls="--")
            ax.set_xlabel(plane.x_label)
            ax.set_ylabel(plane.y_label)
        row[0].text(plane.marks[0][0], y1, f" {plane.marks[0][1]}", color="red", va="top", fontsize=8)
    figure.tight_layout()
    return figure
