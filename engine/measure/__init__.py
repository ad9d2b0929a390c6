"""Measuring a run: the device it ran on, its peak memory, and its energy and CO2 estimates."""
