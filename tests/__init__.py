"""Repository-level tests: the shared fixture layer and the broker configuration."""
