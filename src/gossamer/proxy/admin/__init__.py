"""The admin endpoints: readiness, config dump, stats, drain and exit."""
