"""Tests of broker-config/ against real brokers."""
