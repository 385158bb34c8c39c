"""MLflow: one run per trial and per reference policy; each trained policy as a model."""
