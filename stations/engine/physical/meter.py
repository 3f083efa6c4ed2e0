"""The meter of one EVSE: energy, power, current, voltage, and the EV's state of charge.

Energy is the integral of the power delivered over time, so the register only ever rises.
Readings are named by OCPP's measurands, which every protocol version shares; each dialect
puts them in its own sampled-value format.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .ev import Ev

_VOLTAGE_NOISE = random.Random(0)

# The unit of each reading.
UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Voltage": "V",
    "SoC": "Percent",
}


@dataclass(slots=True)
class Meter:
    """The EVSE's meter: a register that integrates the power it delivers."""

    voltage: float = 230.0
    phases: int = 3
    register_wh: float = 0.0
    power_w: float = 0.0
    # Small wobble on the grid voltage so readings look measured; one generator for all.
    rng: random.Random = field(default=_VOLTAGE_NOISE, repr=False)

    def deliver(self, ev: Ev | None, limit_kw: float, seconds: float) -> None:
        """Advance by `seconds` of charging `ev` at no more than `limit_kw`."""
        if ev is None or seconds <= 0:
            self.power_w = 0.0
            return
        self.power_w = max(0.0, min(limit_kw, ev.accepts_kw())) * 1000.0
        energy_wh = self.power_w * seconds / 3600.0
        self.register_wh += energy_wh
        ev.soc = min(100.0, ev.soc + energy_wh / (ev.capacity_kwh * 10.0))
        if ev.soc >= 100.0:
            self.power_w = 0.0

    def stop(self) -> None:
        self.power_w = 0.0

    def current_a(self) -> float:
        return self.power_w / (self.voltage * self.phases)

    def readings(self, ev: Ev | None) -> dict[str, float]:
        """Every reading this meter has now, by measurand (SoC only with an EV)."""
        readings = {
            "Energy.Active.Import.Register": round(self.register_wh, 1),
            "Power.Active.Import": round(self.power_w, 1),
            "Current.Import": round(self.current_a(), 2),
            "Voltage": round(self.voltage + self.rng.uniform(-2.0, 2.0), 1),
        }
        if ev is not None:
            readings["SoC"] = round(ev.soc, 1)
        return readings
