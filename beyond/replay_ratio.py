"""--replay-ratio K: K learn steps for every env step that learns, instead of the blog's one.

Each transition is then replayed K times as often, which gets more learning out of a fixed
budget of env steps (the measure of sample efficiency) at the price of K times the learn
time. --train-every N is the other direction, one learn step every N env steps. The
target net's sync still counts learn steps, so with K = 4 it syncs four times as often
per env step.
"""


class ReplayRatio:
    """Mixin for dqn.DQN or PixelDQN: each learn() makes replay_ratio learn steps and returns their mean loss."""

    RESUME_STATE = ()  # nothing beyond the base agent's: replay_ratio is a setting

    def __init__(self, *args, replay_ratio, **overrides):
        self.replay_ratio = replay_ratio
        super().__init__(*args, **overrides)

    def learn(self):
        loss_sum = 0.0
        for _ in range(self.replay_ratio):
            loss_sum += super().learn()
        return loss_sum / self.replay_ratio
