"""`python -m dnt_rllib.tune`'s parts: the param space, what trials share, the checks before
Ray starts, the experiment's folder, the run and its summary."""
