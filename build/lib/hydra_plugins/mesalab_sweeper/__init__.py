"""Hydra sweeper that drops combinations which are the same run (see ``mesalab.studies.sweep``)."""
