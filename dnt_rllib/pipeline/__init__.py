"""The RLlib / Ray Tune / MLflow layer: algorithm configs, the RLlib env, metrics, trials."""
