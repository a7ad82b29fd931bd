"""Metrics, baselines, fits and reports computed from rollouts of the task generator."""
