"""Micro-expression recognition study."""
