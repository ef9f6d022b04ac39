"""Exporters: components that deliver batches to backends."""
