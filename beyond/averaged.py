"""--averaged-policy TAU: the greedy policy is a running average of eval_net's weights.

Once a LunarLander agent can land, its greedy policy swings from one evaluation to the next:
the last few hundred learn steps decide whether it lands, hovers on the pad or crashes. An
exponential moving average of the weights (w_avg += TAU (w - w_avg) after each learn step, a
memory of about 1/TAU learn steps) smooths those swings out. Training is unchanged: eval_net
explores and learns exactly as without it, and the average only watches. What plays greedily
is the average: the evaluations, the saved model, --play and the videos.

The average must not explore in eval_net's place: an agent that acted with weights a few
thousand learn steps old learned far more slowly (docs/other-tasks.md, LunarLander).
"""

import copy
import functools

import torch


class AveragedPolicy:
    """Mixin for dqn.DQN: policy_net, an average of eval_net's weights, is the agent's greedy policy."""

    RESUME_STATE = ("policy_net",)

    def __init__(self, *args, averaged_policy, **overrides):
        self.averaged_policy = averaged_policy
        super().__init__(*args, **overrides)
        self.policy_net = copy.deepcopy(self.eval_net)  # a copy draws no random numbers, so the run is unchanged

    def learn(self):
        loss = super().learn()
        move_towards(self.policy_net, self.eval_net, self.averaged_policy)
        return loss

    def choose_action(self, s):
        """The blog's ε-greedy, greedy by eval_net itself: training is the run without the average."""
        if self.rng.random() < self.epsilon:
            return super().greedy_action(s)
        return int(self.rng.integers(self.n_actions))

    def greedy_action(self, s):
        """argmax_a Q(s, a) by the average: the agent's own greedy_action, reading policy_net's weights."""
        live = self.eval_weights
        self.eval_weights = self.policy_weights
        try:
            return super().greedy_action(s)
        finally:
            self.eval_weights = live

    @functools.cached_property
    def policy_weights(self):
        """numpy views of policy_net's weights, laid out as eval_weights (a restore loads the nets in place)."""
        return [p.detach().numpy() for p in self.policy_net.parameters()]


@torch.no_grad()
def move_towards(average, live, tau):
    """One step of the exponential moving average: each of average's weights moves tau of the way to live's."""
    for average_weight, live_weight in zip(average.parameters(), live.parameters(), strict=True):
        average_weight.lerp_(live_weight, tau)


def policy_net(agent):
    """The net that plays the agent's greedy policy: the average with --averaged-policy, else eval_net."""
    return getattr(agent, "policy_net", agent.eval_net)
