"""Shared helpers: device/precision, logging and progress, atomic files, run directories."""
