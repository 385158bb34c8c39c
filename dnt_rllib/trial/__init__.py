"""One trial: its typed settings, the RLlib config built from them, the Tune trainable, the
references it is scored against and the trained policy it leaves."""
