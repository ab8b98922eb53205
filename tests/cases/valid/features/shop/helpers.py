"""Imported by data.py with a relative import: validation must not leave bytecode for it either."""

PREFIX = "item"
