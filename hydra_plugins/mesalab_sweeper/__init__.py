"""Hydra sweeper that drops combinations which are the same run (see ``studies.sweep``)."""
