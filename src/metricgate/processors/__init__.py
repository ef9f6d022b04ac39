"""Processors: components that transform batches between receivers and exporters."""
