"""Energies of new structures from machine-learned or first-principles calculators through ASE.

calculators   SevenNet-0 (default), CHGNet, or any ASE calculator by import path; the optional extra `ml`
structures    reading CIF/POSCAR/extxyz; building known phases (ase.build, AFLOW prototypes)
structure_checks  bounds checked before parsing (sizes, declared counts, occupancies) and physical cells after
relax         ASE optimizer + cell filter
calibration   elemental reference energies fitted on known compounds, in the data set's frame
energy        a structure's formation energy and where it lands (hull, window), the saved entry

Nothing here imports torch, sevenn or chgnet at import time: the extra is only needed when a calculator runs.
"""
