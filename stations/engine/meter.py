"""Energy, power, current, voltage and state of charge of one EVSE.

Power follows a constant-current/constant-voltage curve: the EV takes what the EVSE
offers until its battery is about 80 % full, then tapers towards the top. Energy is the
integral of that power over time, so the register only ever rises.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# Above this state of charge a battery accepts less and less power.
TAPER_FROM_SOC = 80.0
# At 100 % the EV still draws this share of its maximum, then stops.
TAPER_FLOOR = 0.05

_VOLTAGE_NOISE = random.Random(0)

UNITS = {
    "Energy.Active.Import.Register": "Wh",
    "Power.Active.Import": "W",
    "Current.Import": "A",
    "Voltage": "V",
    "SoC": "Percent",
}


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

    def sample(self, measurands: list[str], context: str, ev: Ev | None) -> list[dict]:
        """OCPP sampledValue items (camelCase) for the measurands this meter knows."""
        readings = {
            "Energy.Active.Import.Register": round(self.register_wh, 1),
            "Power.Active.Import": round(self.power_w, 1),
            "Current.Import": round(self.current_a(), 2),
            "Voltage": round(self.voltage + self.rng.uniform(-2.0, 2.0), 1),
        }
        if ev is not None:
            readings["SoC"] = round(ev.soc, 1)
        values = []
        for measurand in measurands:
            if measurand not in readings:
                continue
            item = {"value": readings[measurand], "context": context, "measurand": measurand}
            item["unitOfMeasure"] = {"unit": UNITS[measurand]}
            if measurand == "SoC":
                item["location"] = "EV"
            values.append(item)
        return values
