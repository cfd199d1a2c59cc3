"""Hypothesis fuzzing of provider response parsing and of every report formatter (issue 9)."""
