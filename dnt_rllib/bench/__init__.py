"""Benchmarks: env throughput, and the learner's update against the torch floor
(``python -m dnt_rllib.bench``)."""
