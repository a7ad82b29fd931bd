"""Metrics, baselines, fits, probes, sweep aggregation, plots and reports."""
