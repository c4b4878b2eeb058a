"""Outbreak detectors: pure, vectorised functions over a (series x time) count matrix.

No I/O and no clock: counts and parameters in, arrays out. Each detector lives in its
own module with its literature, and is tested against the R package `surveillance`.
"""
