"""The experiment YAML: its schema, search spaces and the checks that run before Ray starts."""
