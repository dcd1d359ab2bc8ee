"""Placeholder: filled in by the fault catalogue work (issue 8)."""
