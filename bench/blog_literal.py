"""The blog's dqn.py, ported only as far as it must go to run today.

This is the baseline that every speed claim in the docs is measured against.
Changes from the blog's listing, and nothing else:
  - gym -> gymnasium: reset() returns (obs, info), step() returns five values;
  - Variable removed (tensors carry autograd themselves);
  - nn.init.normal -> nn.init.normal_;
  - choose_action returns a Python int (gymnasium rejects a 0-d tensor);
  - each episode is capped (the unwrapped env never ends once the agent is good);
  - rendering is off, argv sets episodes/cap/seed, and the loop reports timing.

Run: python bench/blog_literal.py [episodes] [max_episode_steps] [seed]
"""

import json
import sys
import time

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn

batch_size = 32
lr = 0.01
epsilon = 0.9
gamma = 0.9
target_replace_iter = 100
memory_capacity = 2000
env = gym.make("CartPole-v0")
env = env.unwrapped
n_actions = env.action_space.n
n_states = env.observation_space.shape[0]


class q_net(nn.Module):
    def __init__(self, hidden=50):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(n_states, hidden), nn.ReLU(True), nn.Linear(hidden, n_actions))

        nn.init.normal_(self.fc[0].weight, std=0.1)
        nn.init.normal_(self.fc[2].weight, std=0.1)

    def forward(self, x):
        actions_value = self.fc(x)
        return actions_value


class DQN:
    def __init__(self):
        self.eval_net, self.target_net = q_net(), q_net()

        self.learn_step_counter = 0
        self.memory_counter = 0
        self.memory = np.zeros((memory_capacity, n_states * 2 + 2))
        self.optimizer = torch.optim.Adam(self.eval_net.parameters(), lr=lr)
        self.criterion = nn.MSELoss()

    def choose_action(self, s):
        s = torch.unsqueeze(torch.FloatTensor(s), 0)
        if np.random.uniform() < epsilon:
            actions_value = self.eval_net(s)
            action = int(torch.max(actions_value, 1)[1].data[0])
        else:
            action = np.random.randint(0, n_actions)
        return action

    def store_transition(self, s, a, r, s_):
        transition = np.hstack((s, [a, r], s_))
        index = self.memory_counter % memory_capacity
        self.memory[index, :] = transition
        self.memory_counter += 1

    def learn(self):
        if self.learn_step_counter % target_replace_iter == 0:
            self.target_net.load_state_dict(self.eval_net.state_dict())
        self.learn_step_counter += 1

        sample_index = np.random.choice(memory_capacity, batch_size)
        b_memory = self.memory[sample_index, :]
        b_s = torch.FloatTensor(b_memory[:, :n_states])
        b_a = torch.LongTensor(b_memory[:, n_states : n_states + 1].astype(int))
        b_r = torch.FloatTensor(b_memory[:, n_states + 1 : n_states + 2])
        b_s_ = torch.FloatTensor(b_memory[:, -n_states:])

        q_eval = self.eval_net(b_s).gather(1, b_a)
        q_next = self.target_net(b_s_).detach()
        q_target = b_r + gamma * q_next.max(1)[0].view(batch_size, 1)
        loss = self.criterion(q_eval, q_target)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()


if __name__ == "__main__":
    episodes = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    max_episode_steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    torch.manual_seed(seed)
    np.random.seed(seed)

    dqn_trainer = DQN()
    all_reward = []
    env_steps = learn_steps = 0
    episode_ends = []
    t0 = time.perf_counter()
    for i_episode in range(episodes):
        s, _ = env.reset(seed=seed if i_episode == 0 else None)
        reward = 0
        for _ in range(max_episode_steps):
            a = dqn_trainer.choose_action(s)
            s_, r, done, truncated, info = env.step(a)
            env_steps += 1

            x, x_dot, theta, theta_dot = s_
            r1 = (env.x_threshold - abs(x)) / env.x_threshold - 0.8
            r2 = (env.theta_threshold_radians - abs(theta)) / env.theta_threshold_radians - 0.5
            r = r1 + r2

            dqn_trainer.store_transition(s, a, r, s_)

            reward += r
            if dqn_trainer.memory_counter > memory_capacity:
                dqn_trainer.learn()
                learn_steps += 1
            if done:
                break
            s = s_
        all_reward.append(reward)
        episode_ends.append((env_steps, time.perf_counter() - t0, learn_steps > 0))
    # One JSON line for bench/speed.py: per episode, (env steps so far, wall s, learning?).
    print(
        "RESULT "
        + json.dumps(
            dict(episode_ends=episode_ends, learn_steps=learn_steps, last50_reward=float(np.mean(all_reward[-50:])))
        )
    )
