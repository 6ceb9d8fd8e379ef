"""Thermodynamics: pure functions on entries (hull energies, stability, windows, reactions)."""
