"""Jittered exponential backoff for reconnecting ("full jitter")."""

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays of ``uniform(0, min(maximum, initial * factor**attempt))``, never below ``floor``.

    Full jitter spreads a fleet's reconnects after a broker outage instead of having every
    device retry in lockstep.
    """

    initial: float = 1.0
    maximum: float = 60.0
    factor: float = 2.0
    floor: float = 0.1
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts as one failed attempt."""
        ceiling = min(self.maximum, self.initial * self.factor ** min(self.attempt, 32))
        self.attempt += 1
        return max(self.floor, self.rng.uniform(0, ceiling))

    def reset(self) -> None:
        """A connection succeeded: start from ``initial`` again."""
        self.attempt = 0
