"""Unit conversion for the agent: length, mass, volume, speed, data size, time and temperature."""

from __future__ import annotations


class UnitError(ValueError):
    """Unknown unit, or units of different kinds."""


# Factor to the base unit of each kind (metre, kilogram, litre, metre/second, byte, second).
_FACTORS: dict[str, dict[str, float]] = {
    "length": {
        "m": 1.0, "km": 1000.0, "cm": 0.01, "mm": 0.001, "um": 1e-6, "nm": 1e-9,
        "mi": 1609.344, "yd": 0.9144, "ft": 0.3048, "in": 0.0254, "nmi": 1852.0,
    },
    "mass": {
        "kg": 1.0, "g": 0.001, "mg": 1e-6, "t": 1000.0, "lb": 0.45359237, "oz": 0.028349523125, "st": 6.35029318,
    },
    "volume": {
        "l": 1.0, "ml": 0.001, "cl": 0.01, "dl": 0.1, "m3": 1000.0, "cm3": 0.001,
        "gal": 3.785411784, "qt": 0.946352946, "pt": 0.473176473, "cup": 0.2365882365, "floz": 0.0295735295625,
    },
    "speed": {"m/s": 1.0, "km/h": 1 / 3.6, "mph": 0.44704, "kn": 0.514444444, "ft/s": 0.3048},
    "data": {
        "bit": 0.125, "b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
        "kib": 1024.0, "mib": 1024.0**2, "gib": 1024.0**3, "tib": 1024.0**4,
        "kbit": 125.0, "mbit": 125e3, "gbit": 125e6,
    },
    "time": {"s": 1.0, "ms": 0.001, "min": 60.0, "h": 3600.0, "day": 86400.0, "week": 604800.0, "year": 31557600.0},
}
_TEMPERATURE = {"c", "f", "k"}

_ALIASES = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m", "kilometer": "km", "kilometers": "km",
    "kilometre": "km", "kilometres": "km", "centimeter": "cm", "centimeters": "cm", "millimeter": "mm",
    "millimeters": "mm", "micrometer": "um", "µm": "um", "nanometer": "nm", "mile": "mi", "miles": "mi",
    "yard": "yd", "yards": "yd", "foot": "ft", "feet": "ft", "inch": "in", "inches": "in",
    "nautical mile": "nmi", "nautical miles": "nmi",
    "kilogram": "kg", "kilograms": "kg", "kgs": "kg", "gram": "g", "grams": "g", "milligram": "mg",
    "milligrams": "mg", "tonne": "t", "tonnes": "t", "ton": "t", "tons": "t", "pound": "lb", "pounds": "lb",
    "lbs": "lb", "ounce": "oz", "ounces": "oz", "stone": "st",
    "liter": "l", "liters": "l", "litre": "l", "litres": "l", "milliliter": "ml", "milliliters": "ml",
    "millilitre": "ml", "m^3": "m3", "cubic meter": "m3", "cubic meters": "m3", "cc": "cm3",
    "gallon": "gal", "gallons": "gal", "quart": "qt", "quarts": "qt", "pint": "pt", "pints": "pt",
    "cups": "cup", "fl oz": "floz", "fluid ounce": "floz", "fluid ounces": "floz",
    "mps": "m/s", "meters per second": "m/s", "kmh": "km/h", "kph": "km/h", "km/hr": "km/h",
    "kilometers per hour": "km/h", "miles per hour": "mph", "knot": "kn", "knots": "kn", "kt": "kn",
    "fps": "ft/s", "feet per second": "ft/s",
    "bits": "bit", "byte": "b", "bytes": "b", "kilobyte": "kb", "kilobytes": "kb", "megabyte": "mb",
    "megabytes": "mb", "gigabyte": "gb", "gigabytes": "gb", "terabyte": "tb", "terabytes": "tb",
    "petabyte": "pb", "kibibyte": "kib", "mebibyte": "mib", "gibibyte": "gib", "tebibyte": "tib",
    "kilobit": "kbit", "kilobits": "kbit", "megabit": "mbit", "megabits": "mbit", "gigabit": "gbit",
    "gigabits": "gbit", "kbps": "kbit", "mbps": "mbit", "gbps": "gbit",
    "sec": "s", "second": "s", "seconds": "s", "millisecond": "ms", "milliseconds": "ms", "minute": "min",
    "minutes": "min", "mins": "min", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "days": "day",
    "d": "day", "weeks": "week", "years": "year", "yr": "year",
    "celsius": "c", "°c": "c", "degc": "c", "centigrade": "c", "fahrenheit": "f", "°f": "f", "degf": "f",
    "kelvin": "k",
}


def _normalise(unit: str) -> str:
    key = " ".join(str(unit).strip().lower().split())
    return _ALIASES.get(key, key)


def _kind(unit: str) -> str:
    if unit in _TEMPERATURE:
        return "temperature"
    for kind, table in _FACTORS.items():
        if unit in table:
            return kind
    raise UnitError(f"unknown unit {unit!r}; known units: {', '.join(known_units())}")


def known_units() -> list[str]:
    units = [u for table in _FACTORS.values() for u in table]
    return units + sorted(_TEMPERATURE)


def _to_kelvin(value: float, unit: str) -> float:
    return {"c": value + 273.15, "f": (value - 32) * 5 / 9 + 273.15, "k": value}[unit]


def _from_kelvin(value: float, unit: str) -> float:
    return {"c": value - 273.15, "f": (value - 273.15) * 9 / 5 + 32, "k": value}[unit]


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (both of the same kind)."""
    source, target = _normalise(from_unit), _normalise(to_unit)
    kind, target_kind = _kind(source), _kind(target)
    if kind != target_kind:
        raise UnitError(f"cannot convert {kind} ({from_unit}) to {target_kind} ({to_unit})")
    if kind == "temperature":
        kelvin = _to_kelvin(float(value), source)
        if kelvin < 0:
            raise UnitError(f"{value} {from_unit} is below absolute zero")
        return _from_kelvin(kelvin, target)
    return float(value) * _FACTORS[kind][source] / _FACTORS[kind][target]
