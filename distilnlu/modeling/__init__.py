"""Models: size presets, building and loading masked LMs."""
