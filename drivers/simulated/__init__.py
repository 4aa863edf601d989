"""Simulated devices: product code, selectable by setting, scriptable by tests."""
