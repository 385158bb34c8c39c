"""RLlib extensions: the env as RLlib steps it, the replay ring and its batch-native
training step, the lean learner, the recurrent DQN module, the metrics callback."""
