"""Fleetwire protocol."""
