"""n-step returns: learn from the next n rewards before bootstrapping, not from one.

The one-step target r + gamma * max Q(s') leans almost wholly on the net's own estimate,
so a reward takes many updates to flow back to the states that earned it. The n-step
target r_0 + gamma r_1 + ... + gamma^(n-1) r_(n-1) + gamma^n max Q(s_n) carries n real
rewards at once. The price is bias towards the behaviour policy: the rewards came from
the actions exploration took, not from the greedy ones.

Each row is written when its step happens, as a one-step transition, and rewritten as
each of its next n-1 rewards comes in: its return grows, its s_ moves on, and its
discount becomes gamma^k for the k rewards it sums. An episode's end closes its rows
early, so the last rows of an episode sum fewer rewards. Rows of the running episode are
valid k-step transitions at every moment, and the memory gains one row per env step, as
the blog's does, so learning starts and train_every keep their meaning.
"""

import numpy as np
import torch


class NStepRows:
    """Mixin for a replay memory: rows hold n-step returns, each with its own discount gamma^k, which batches carry."""

    RESUME_STATE = ("discount", "open_rows")  # what --resume saves beyond the blog's memory
    next_state_shifts_one_frame = False  # a row's s_ lies up to n steps on

    def __init__(self, capacity, n_states, *, gamma, n_step, **options):
        self.gamma, self.n_step = gamma, n_step
        super().__init__(capacity, n_states, **options)
        self.discount = np.full((capacity, 1), gamma, dtype=np.float32)
        self.open_rows = []  # [row, s, a, return so far, rewards summed] of the rows still collecting rewards

    def store(self, s, a, r, s_, terminated=False, truncated=False):
        """Open a row for this step; add r to every open row and move its s_ on to this s_."""
        self.open_rows.append([self.counter % self.capacity, s, a, 0.0, 0])
        for row in self.open_rows:
            index, row_s, row_a, total, k = row
            row[3], row[4] = total + self.gamma**k * r, k + 1
            self.write(index, row_s, row_a, row[3], s_, terminated)
            self.discount[index] = self.gamma ** row[4]
        self.counter += 1
        if terminated or truncated:  # the episode is over: its rows sum what rewards it had
            self.open_rows = []
        else:
            self.open_rows = [row for row in self.open_rows if row[4] < self.n_step]

    def batch_at(self, index):
        """The memory's batch, with each row's discount gamma^k for the target."""
        return super().batch_at(index)._replace(discount=torch.from_numpy(self.discount[index]))


class NStepReturns:
    """Mixin for dqn.DQN or PixelDQN: learn from n-step returns, kept in its memory's NStepRows."""

    memory_mixin = NStepRows  # beyond/agents.py mixes it into the agent's memory_class

    def __init__(self, *args, n_step, **overrides):
        self.n_step = n_step
        super().__init__(*args, **overrides)

    def make_memory(self, **options):
        """The base agent's memory, given what its NStepRows take: gamma and n."""
        return super().make_memory(gamma=self.gamma, n_step=self.n_step, **options)
