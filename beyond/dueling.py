"""The dueling network (Wang et al., 2016): Q(s, a) = V(s) + A(s, a) - mean over a' of A(s, a').

A plain head learns each action's value on its own. The dueling head splits it in two: V,
how good the state is whatever the agent does, and A, how much better each action is than
the others. Every update then moves V, which all actions share, so the value of a state is
learned from whichever action was taken there. Subtracting the mean of A pins the split
down: without it, any constant could move between V and A.
"""

import numpy as np
import torch
import torch.nn as nn

import dqn
from beyond.deep import hidden_features


class DuelingHead(nn.Module):
    """In place of a q_net's last Linear: a value stream and an advantage stream, combined into Q."""

    def __init__(self, hidden, n_actions):
        super().__init__()
        self.value, self.advantage = nn.Linear(hidden, 1), nn.Linear(hidden, n_actions)

    def forward(self, h):
        """Q for every action, from the hidden features h: V + A - mean(A)."""
        advantage = self.advantage(h)
        return self.value(h) + advantage - advantage.mean(-1, keepdim=True)

    def backprop(self, h, d_q):
        """Set the streams' .grad from dloss/dQ; return dloss/dh (what loss.backward() would give)."""
        d_value = d_q.sum(1, keepdim=True)  # V is in every action's Q
        d_advantage = d_q - d_q.mean(1, keepdim=True)  # A(a) is in Q(a), and in every Q through the mean
        for layer, d_out in ((self.value, d_value), (self.advantage, d_advantage)):
            layer.weight.grad, layer.bias.grad = d_out.T @ h, d_out.sum(0)
        return d_value @ self.value.weight + d_advantage @ self.advantage.weight


class dueling_q_net(dqn.q_net):
    """The blog's q_net with a DuelingHead as its last layer, and the hand-written backprop to match."""

    def __init__(self, n_states, n_actions, hidden=50):
        super().__init__(n_states, n_actions, hidden)
        self.fc[2] = DuelingHead(hidden, n_actions)
        for layer in (self.fc[2].value, self.fc[2].advantage):
            nn.init.normal_(layer.weight, std=0.1)  # the blog's init, as q_net's own layers have

    def backprop(self, x, hidden, action, d_q):
        """q_net.backprop through the dueling head."""
        first, head = self.fc[0], self.fc[2]
        d_out = torch.zeros(len(x), head.advantage.out_features).scatter_(1, action, d_q)
        d_hidden = head.backprop(hidden, d_out) * (hidden > 0)
        first.weight.grad, first.bias.grad = d_hidden.T @ x, d_hidden.sum(0)


class Dueling:
    """Mixin for dqn.DQN: a dueling_q_net for eval_net and target_net."""

    RESUME_STATE = ()  # nothing beyond the base agent's: the nets are the base agent's state

    def make_net(self):
        """A fresh dueling_q_net of the agent's size."""
        return dueling_q_net(self.n_states, self.n_actions, self.hidden)

    def greedy_action(self, s):
        """argmax_a A(s, a), in numpy: V(s) and the mean of A are the same for every action."""
        w1, b1, _, _, w_advantage, b_advantage = self.eval_weights
        return int(np.argmax(w_advantage @ np.maximum(w1 @ s + b1, 0) + b_advantage))


class DuelingPixels:
    """Mixin for PixelDQN: conv_q_net's last Linear becomes a DuelingHead; autograd does the rest."""

    RESUME_STATE = ()  # nothing beyond PixelDQN's

    def make_net(self):
        """PixelDQN's net with a DuelingHead of the same size in place of its last layer."""
        return with_dueling_head(super().make_net())


class DuelingHiddenLayers:
    """Mixin for HiddenLayers (beyond/deep.py): deep_q_net's last Linear becomes a DuelingHead."""

    RESUME_STATE = ()  # nothing beyond the base agent's: the nets are the base agent's state

    def make_net(self):
        """deep_q_net with a DuelingHead in place of its last layer, its streams ~ N(0, 0.1) as the layers below."""
        net = with_dueling_head(super().make_net())
        for layer in (net.fc[-1].value, net.fc[-1].advantage):
            nn.init.normal_(layer.weight, std=0.1)
        return net

    def greedy_action(self, s):
        """argmax_a A(s, a) on the last hidden layer's features, in numpy, as Dueling's."""
        *hidden, _, _, w_advantage, b_advantage = self.eval_weights
        return int(np.argmax(w_advantage @ hidden_features(hidden, s) + b_advantage))


def with_dueling_head(net):
    """net with a DuelingHead of the same size in place of its last Linear, net.fc[-1]."""
    last = net.fc[-1]
    net.fc[-1] = DuelingHead(last.in_features, last.out_features).to(last.weight.device)
    return net
