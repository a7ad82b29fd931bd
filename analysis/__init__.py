"""Metrics, fits, probes, sweep aggregation, plots and reports."""
