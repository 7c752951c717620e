"""Workflow steps around the model (preprocessing)."""
