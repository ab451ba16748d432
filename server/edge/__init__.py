"""The edge: what every request passes before a door reads it (scan, gate, limits, headers)."""
