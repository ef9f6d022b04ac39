"""Receivers: components that accept metrics from clients."""
