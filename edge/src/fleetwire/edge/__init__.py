"""Fleetwire edge."""
