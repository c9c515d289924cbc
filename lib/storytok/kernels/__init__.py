"""Numba kernels: plain functions over NumPy arrays, compiled once and cached on disk.

Python objects stay out of here; the modules one level up (pretokenizer, train,
tokenizer) turn bytes and dicts into the arrays these functions take.
"""
