"""Proportional prioritized replay (Schaul et al., 2016): replay the surprising transitions more.

Uniform replay spends most updates on transitions the net already predicts well. Here row
i is drawn with probability P(i) = p_i / sum(p), its priority p_i = (|TD error| + eps)^alpha
from the last time it was learned from; a new row starts at the highest priority so far,
so that every row is learned from at least once. alpha = 0 is uniform replay again.

Drawing some rows more often changes the distribution the loss averages over, which biases
the update. Each sample's loss is therefore weighted by w_i = (N P(i))^-beta, N the number
of filled rows, and divided by the batch's largest weight so that weights only ever shrink
a step. beta = 1 undoes the bias fully; it starts lower (--per-beta) and rises to 1 over
--per-beta-steps env steps, since the bias matters most near the end of training.
"""

import numpy as np
import torch

from beyond.sumtree import SumTree

PRIORITY_EPSILON = 1e-6  # keeps a row whose TD error is 0 drawable


class PrioritizedRows:
    """Mixin for a replay memory: rows drawn by priority, each sample's importance weight in the batch."""

    RESUME_STATE = ("priorities", "max_priority", "beta")  # what --resume saves beyond the blog's memory

    def __init__(self, capacity, n_states, *, per_alpha, per_beta, **options):
        super().__init__(capacity, n_states, **options)
        self.per_alpha = per_alpha
        self.beta = per_beta  # now; hooks.Schedules raises it towards 1
        self.priorities = SumTree(capacity)
        self.max_priority = 1.0

    def store(self, s, a, r, s_, terminated=False, truncated=False):
        """The memory's store, the new row entering at the highest priority so far."""
        index = self.counter % self.capacity
        super().store(s, a, r, s_, terminated, truncated)
        self.priorities[index] = self.max_priority

    def sample(self, batch_size, rng):
        """batch_size rows drawn by priority, one from each of batch_size equal slices of the total."""
        slices = (np.arange(batch_size) + rng.random(batch_size)) / batch_size
        filled = min(self.counter, self.capacity)
        rows = np.minimum(self.priorities.find(slices * self.priorities.total), filled - 1)
        return self.batch_at(rows)._replace(weights=self.importance_weights(rows, filled), rows=rows)

    def importance_weights(self, rows, filled):
        """w_i = (N P(i))^-beta over the largest in the batch (N: filled rows), as a (batch, 1) float32 tensor."""
        weights = (filled * self.priorities[rows] / self.priorities.total) ** -self.beta
        return torch.from_numpy((weights / weights.max()).astype(np.float32)[:, None])

    def learned(self, rows, td_error):
        """Rows' priorities follow |TD error| from the update that learned from them."""
        priority = (np.abs(td_error.cpu().numpy()[:, 0].astype(np.float64)) + PRIORITY_EPSILON) ** self.per_alpha
        self.priorities[rows] = priority
        self.max_priority = max(self.max_priority, float(priority.max()))


class PrioritizedReplay:
    """Mixin for dqn.DQN or PixelDQN: replay by priority from its memory's PrioritizedRows, the loss weighted."""

    memory_mixin = PrioritizedRows  # beyond/agents.py mixes it into the agent's memory_class

    def __init__(self, *args, per_alpha, per_beta, **overrides):
        self.per_alpha, self.per_beta = per_alpha, per_beta
        super().__init__(*args, **overrides)

    def make_memory(self, **options):
        """The base agent's memory, given what its PrioritizedRows take: alpha and the starting beta."""
        return super().make_memory(per_alpha=self.per_alpha, per_beta=self.per_beta, **options)

    def update(self, batch):
        """The base agent's update, weighted by the batch; its rows' priorities then follow |TD error|."""
        loss, td_error = super().update(batch)
        self.memory.learned(batch.rows, td_error)
        return loss, td_error
