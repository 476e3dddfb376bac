"""Per-request concerns, one module each: routing, balancing, outlier detection, stats."""
