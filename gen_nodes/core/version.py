"""The package version: one place, read by hatch at build time and by every module that reports it."""

__version__ = "0.1.0"
