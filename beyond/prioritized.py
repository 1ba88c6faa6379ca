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


class PrioritizedReplay:
    """Mixin for dqn.DQN or PixelDQN: rows drawn by priority, each sample's loss weighted."""

    RESUME_STATE = ("priorities", "max_priority", "beta")  # what --resume saves beyond the base agent's

    def __init__(self, *args, per_alpha, per_beta, **overrides):
        self.per_alpha, self.per_beta = per_alpha, per_beta
        self.beta = per_beta  # now; hooks.Schedules raises it towards 1
        super().__init__(*args, **overrides)
        self.priorities = SumTree(self.memory_capacity)
        self.max_priority = 1.0

    def store_transition(self, s, a, r, s_, terminated=False, truncated=False):
        """The base agent's store, the new row entering at the highest priority so far."""
        index = self.memory_counter % self.memory_capacity
        super().store_transition(s, a, r, s_, terminated, truncated)
        self.priorities[index] = self.max_priority

    def sample_batch(self):
        """batch_size rows drawn by priority, one from each of batch_size equal slices of the total."""
        slices = (np.arange(self.batch_size) + self.rng.random(self.batch_size)) / self.batch_size
        filled = min(self.memory_counter, self.memory_capacity)
        rows = np.minimum(self.priorities.find(slices * self.priorities.total), filled - 1)
        return self.batch_at(rows)._replace(weights=self.importance_weights(rows, filled), rows=rows)

    def importance_weights(self, rows, filled):
        """w_i = (N P(i))^-beta over the largest in the batch (N: filled rows), as a (batch, 1) float32 tensor."""
        weights = (filled * self.priorities[rows] / self.priorities.total) ** -self.beta
        return torch.from_numpy((weights / weights.max()).astype(np.float32)[:, None])

    def update(self, batch):
        """The base agent's update, weighted by the batch; its rows' priorities then follow |TD error|."""
        loss, td_error = super().update(batch)
        priority = (np.abs(td_error.cpu().numpy()[:, 0].astype(np.float64)) + PRIORITY_EPSILON) ** self.per_alpha
        self.priorities[batch.rows] = priority
        self.max_priority = max(self.max_priority, float(priority.max()))
        return loss, td_error
