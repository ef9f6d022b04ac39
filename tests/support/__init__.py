"""Helpers the tests share: real binaries, a metricgate subprocess, free ports."""
