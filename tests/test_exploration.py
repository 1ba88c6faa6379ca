"""Where the agent went: the visited states of a short run drawn on the task's plane, with its marks."""

import sys

import numpy as np
import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import exploration  # noqa: E402

import dqn  # noqa: E402
from beyond.exploration import VisitedStates, exploration_figure, greedy_actions, plane_of  # noqa: E402


@pytest.fixture(scope="module")
def short_run():
    return exploration.explored(["--preset", "tuned", "--learning-starts", "200"], 0, "MountainCar-v0", budget=2000)


def test_every_state_the_training_env_showed_is_recorded(short_run):
    title, visits, agent, plane = short_run
    assert title == "seed 0, unsolved" and (plane.x, plane.y) == (0, 1)
    assert len(visits) >= 2000 and visits.dtype == np.float32  # each step's state, and each episode's first
    low, high = np.array(plane.bounds).T
    assert ((visits >= low) & (visits <= high)).all()


def test_the_picture_has_three_thirds_and_the_greedy_action_with_the_flag_on_each(short_run):
    title, visits, agent, plane = short_run
    figure = exploration_figure([(title, visits, agent, agent.n_states)], plane)
    axes = figure.axes[:4]
    assert [ax.get_xlabel() for ax in axes] == ["position"] * 4 and [ax.get_ylabel() for ax in axes] == ["velocity"] * 4
    assert all(any(list(line.get_xdata()) == [0.5, 0.5] for line in ax.lines) for ax in axes)  # the flag
    counts = [int(ax.collections[0].get_array().sum()) for ax in axes[:3]]
    assert sum(counts) == len(visits) and max(counts) - min(counts) <= 1  # thirds of the run, every state in one
    assert [t.get_text() for t in axes[3].get_legend().get_texts()] == ["left", "none", "right"]
    figure.canvas.draw()
    frame = figure.bbox
    for text in [ax.title for ax in axes] + axes[0].texts:  # every title inside the figure, not cut at its edge
        box = text.get_window_extent()
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and box.y1 <= frame.y1, text.get_text()
    assert any(t.get_text() == title for t in axes[0].texts)


def test_the_greedy_map_is_the_agents_argmax():
    agent = dqn.DQN(2, 3, seed=0)
    plane = plane_of(dqn.make_env("MountainCar-v0", unwrapped=False))
    xs, ys = np.linspace(-1.2, 0.6, 5), np.linspace(-0.07, 0.07, 4)
    actions = greedy_actions(agent, plane, xs, ys, 2)
    assert actions.shape == (4, 5)
    assert actions[2, 3] == agent.greedy_action(np.array([xs[3], ys[2]], np.float32))


def test_a_task_without_a_plane_has_none():
    assert plane_of(dqn.make_env("Acrobot-v1", unwrapped=False)) is None
    env = VisitedStates(dqn.make_env("CartPole-v1", unwrapped=False), plane_of(dqn.make_env("CartPole-v1")))
    env.reset(seed=0)
    env.step(0)
    assert env.count == 2
