"""Frozen encoders: a registry keyed by config, local or packaged weights, and an identity hash."""
