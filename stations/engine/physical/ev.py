"""The EV plugged into an EVSE, and the power its battery takes (the charge curve).

Power follows a constant-current/constant-voltage curve: the EV takes what the EVSE offers
until its battery is about 80 % full, then tapers towards the top.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Above this state of charge a battery accepts less and less power.
TAPER_FROM_SOC = 80.0
# At 100 % the EV still draws this share of its maximum, then stops.
TAPER_FLOOR = 0.05


@dataclass
class Ev:
    """The vehicle plugged into an EVSE."""

    capacity_kwh: float = 60.0
    soc: float = 30.0
    max_power_kw: float = 11.0
    # False models an EV that stops drawing power (full, or its own timer).
    drawing: bool = True

    @classmethod
    def random(cls, rng: random.Random, evse_max_kw: float) -> Ev:
        dc = evse_max_kw > 22
        return cls(
            capacity_kwh=rng.choice((40.0, 58.0, 77.0, 100.0)),
            soc=round(rng.uniform(10, 60), 1),
            max_power_kw=rng.choice((50.0, 100.0, 150.0)) if dc else rng.choice((7.4, 11.0)),
        )

    def accepts_kw(self) -> float:
        """Power the battery takes at its present state of charge."""
        if not self.drawing or self.soc >= 100.0:
            return 0.0
        if self.soc <= TAPER_FROM_SOC:
            return self.max_power_kw
        remaining = (100.0 - self.soc) / (100.0 - TAPER_FROM_SOC)
        return self.max_power_kw * (TAPER_FLOOR + (1 - TAPER_FLOOR) * remaining)
