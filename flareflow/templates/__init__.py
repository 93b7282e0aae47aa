"""Templates: the project scaffold of ``flareflow new`` (and, later, the Worker build files)."""
