"""The run pipeline: train, freeze, evaluate; training signals; study definitions."""
