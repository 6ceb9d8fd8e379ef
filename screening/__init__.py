"""Interface-stability screening for all-solid-state Li batteries from DFT formation energies."""

__version__ = "0.1.0"
