"""--hidden-layers K: K hidden layers of --hidden units each, where the blog's q_net has one.

Stable-Baselines3's DQN, and so rl-zoo's values, uses two hidden layers of 256. A task whose
values are a more tangled function of the state than CartPole's (MountainCar's, where the
value spirals around the valley in position and velocity) may need the second layer.

The blog's update writes the gradient of its one hidden layer out by hand (q_net.backprop);
for a stack of layers autograd does it, as it does for PixelDQN's CNN.
"""

from itertools import pairwise

import numpy as np
import torch
import torch.nn as nn


class deep_q_net(nn.Module):
    """(Linear -> ReLU) x layers, then Linear to one value per action; weights ~ N(0, 0.1) as q_net's."""

    def __init__(self, n_states, n_actions, hidden, layers):
        super().__init__()
        stack = []
        for n_in, n_out in pairwise([n_states] + [hidden] * layers):
            stack += [nn.Linear(n_in, n_out), nn.ReLU()]
        self.fc = nn.Sequential(*stack, nn.Linear(hidden, n_actions))
        for layer in self.fc[::2]:
            nn.init.normal_(layer.weight, std=0.1)

    def forward(self, x):
        return self.fc(x)


class HiddenLayers:
    """Mixin for dqn.DQN: a deep_q_net for eval_net and target_net, learned through autograd."""

    RESUME_STATE = ()  # nothing beyond the base agent's: the nets are the base agent's state

    def __init__(self, *args, hidden_layers, **overrides):
        self.hidden_layers = hidden_layers
        super().__init__(*args, **overrides)

    def make_net(self):
        return deep_q_net(self.n_states, self.n_actions, self.hidden, self.hidden_layers)

    def greedy_action(self, s):
        """argmax_a Q(s, a), in numpy as the blog's agent does: layer by layer."""
        *hidden, w_out, b_out = self.eval_weights
        return int(np.argmax(w_out @ hidden_features(hidden, s) + b_out))

    def update(self, batch):
        """dqn.DQN.update with loss.backward() in place of the hand-written gradient."""
        return autograd_update(self, batch)


def hidden_features(weights, s):
    """The last hidden layer's output for one state, in numpy: weights are the hidden layers' [w, b, w, b, ...]."""
    for w, b in zip(weights[::2], weights[1::2], strict=True):
        s = np.maximum(w @ s + b, 0)
    return s


def autograd_update(agent, batch):
    """One Adam step on agent.eval_net as dqn.DQN.update takes it, the gradient from loss.backward()."""
    with torch.no_grad():
        q_target = agent.td_target(batch)
    q_eval = agent.eval_net(batch.s).gather(1, batch.a)
    loss_fn = nn.functional.smooth_l1_loss if agent.huber else nn.functional.mse_loss
    if batch.weights is None:
        loss = loss_fn(q_eval, q_target)
    else:  # each row's share of the loss scaled by its weight
        loss = (loss_fn(q_eval, q_target, reduction="none") * batch.weights).mean()
    agent.optimizer.zero_grad()
    loss.backward()
    if agent.grad_clip:
        nn.utils.clip_grad_norm_(agent.eval_net.parameters(), agent.grad_clip)
    agent.optimizer.step()
    return loss.item(), (q_eval - q_target).detach()
