"""Fleetwire cloud."""
