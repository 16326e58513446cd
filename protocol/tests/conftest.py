"""Protocol test configuration: a hypothesis profile that keeps the suite fast and stable."""

from hypothesis import HealthCheck, settings

# No deadline: the first example of a strategy pays for pydantic and regex warm-up, and CI
# machines are slow; the example counts below keep the whole protocol suite under 20 s.
settings.register_profile(
    "fleetwire-protocol",
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("fleetwire-protocol")
