"""Compiled (Numba) kernels of fusedmlp, installed as fusedmlp.kernels."""
