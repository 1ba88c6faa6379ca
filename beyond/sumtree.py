"""A sum tree: priorities that can be changed and sampled from in O(log n).

Prioritized replay draws row i with probability p_i / sum(p). Drawing from a plain array
means a cumulative sum over the whole memory for every batch; the tree keeps partial sums
instead. Leaves hold the priorities, each inner node the sum of its two children, so the
root is the total, and a uniform number in [0, total) finds its leaf by walking down,
going right past the left child's sum. Node 1 is the root, node k's children are 2k and
2k + 1, and the leaves start at node `size`, a power of two.
"""

import numpy as np


class SumTree:
    """Priorities of capacity rows, all 0 at first."""

    RESUME_STATE = ("nodes",)  # size follows from the capacity

    def __init__(self, capacity):
        self.size = 1 << max(capacity - 1, 1).bit_length()  # leaves: capacity rounded up to a power of two
        self.nodes = np.zeros(2 * self.size)

    @property
    def total(self):
        """The sum of every priority."""
        return self.nodes[1]

    def __getitem__(self, index):
        return self.nodes[self.size + np.asarray(index)]

    def __setitem__(self, index, priority):
        """Set the priorities of rows index (an int or an array), then the sums above them."""
        if np.ndim(index) == 0:  # one row, as each new transition is: plain ints are faster than arrays
            node, nodes = self.size + int(index), self.nodes
            nodes[node] = priority
            while node > 1:
                node //= 2
                nodes[node] = nodes[2 * node] + nodes[2 * node + 1]
            return
        node = self.size + np.asarray(index)
        self.nodes[node] = priority
        while node[0] > 1:
            node = node // 2  # a parent shared by two rows is summed twice, to the same value
            self.nodes[node] = self.nodes[2 * node] + self.nodes[2 * node + 1]

    def find(self, values):
        """The rows whose cumulative-priority intervals hold values (each in [0, total))."""
        values = np.array(values, dtype=float)
        node = np.ones(len(values), dtype=np.int64)
        for _ in range(self.size.bit_length() - 1):  # one level down per pass
            node *= 2
            left_sum = self.nodes[node]
            go_right = values >= left_sum
            values -= left_sum * go_right
            node += go_right
        return node - self.size
