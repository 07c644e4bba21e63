"""The one percentile formula of the reports: nearest rank, rounded to milliseconds."""

from __future__ import annotations


def percentile(values: list[float], q: float, digits: int = 3) -> float | None:
    """The value at rank round(q x (n - 1)) of the sorted values; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))], digits)
