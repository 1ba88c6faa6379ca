"""Which agent a run trains: the blog's DQN or PixelDQN, with any of the extensions on top.

The extensions are mixins (beyond/nstep.py, beyond/dueling.py, beyond/prioritized.py,
beyond/replay_ratio.py, beyond/deep.py), each overriding a few of dqn.DQN's methods and calling super()
for the rest, so that any subset of them stacks on either base agent. An extension that changes the
replay memory (n-step returns, prioritized replay) names its own mixin for it, memory_mixin, which is
mixed into the base agent's memory_class the same way.
"""

import dqn
from beyond.averaged import AveragedPolicy
from beyond.config import EXTENSION_DEFAULTS
from beyond.deep import HiddenLayers
from beyond.dueling import Dueling, DuelingHiddenLayers, DuelingPixels
from beyond.nstep import NStepReturns
from beyond.pixels import PixelDQN
from beyond.prioritized import PrioritizedReplay
from beyond.replay_ratio import ReplayRatio


def agent_class(
    pixels=False, n_step=1, dueling=False, prioritized=False, replay_ratio=1, hidden_layers=1, averaged_policy=0.0
):
    """dqn.DQN or PixelDQN, with the chosen extensions mixed in."""
    base = PixelDQN if pixels else dqn.DQN
    dueling_mixin = DuelingPixels if pixels else DuelingHiddenLayers if hidden_layers > 1 else Dueling
    chosen = (
        (ReplayRatio, replay_ratio > 1),
        (AveragedPolicy, averaged_policy > 0),  # inside ReplayRatio: the average moves after every learn step
        (PrioritizedReplay, prioritized),
        (NStepReturns, n_step > 1),
        (dueling_mixin, dueling),
        (HiddenLayers, hidden_layers > 1),  # the state MLP's; flags.py refuses it with --pixels
    )
    mixins = [mixin for mixin, on in chosen if on]
    if not mixins:
        return base
    return type(named(mixins, base), (*mixins, base), {"memory_class": memory_class(mixins, base.memory_class)})


def memory_class(mixins, base):
    """base (the agent's replay memory) with the memory mixins of the agent's mixins, in their order."""
    memory_mixins = [mixin.memory_mixin for mixin in mixins if hasattr(mixin, "memory_mixin")]
    return type(named(memory_mixins, base), (*memory_mixins, base), {}) if memory_mixins else base


def named(mixins, base):
    """A mixed class's name: its parts' names, in order."""
    return "".join(m.__name__ for m in mixins) + base.__name__


def make_agent(shape, n_actions, seed=None, pixels=False, device="cpu", **settings):
    """A fresh agent: settings are dqn.hyperparameters and EXTENSION_DEFAULTS' keys."""
    extensions = {**EXTENSION_DEFAULTS, **{k: settings.pop(k) for k in EXTENSION_DEFAULTS if k in settings}}
    chosen = ("n_step", "dueling", "prioritized", "replay_ratio", "hidden_layers", "averaged_policy")
    cls = agent_class(pixels, *(extensions[name] for name in chosen))
    kwargs = dict(seed=seed, **settings)
    if pixels:
        kwargs.update(device=device, track_strip=extensions["track_strip"])
    if extensions["n_step"] > 1:
        kwargs["n_step"] = extensions["n_step"]
    if extensions["prioritized"]:
        kwargs.update(per_alpha=extensions["per_alpha"], per_beta=extensions["per_beta"])
    if extensions["replay_ratio"] > 1:
        kwargs["replay_ratio"] = extensions["replay_ratio"]
    if extensions["hidden_layers"] > 1:
        kwargs["hidden_layers"] = extensions["hidden_layers"]
    if extensions["averaged_policy"] > 0:
        kwargs["averaged_policy"] = extensions["averaged_policy"]
    agent = cls(shape, n_actions, **kwargs)
    agent.extensions = extensions
    return agent
