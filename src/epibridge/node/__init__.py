"""The node's own state and records: privacy ledger, transfer register, agreement stops.

Everything here lives in one SQLite file per node (``state.py``); the pure stages that
decide what may leave are in ``epibridge.pipeline``.
"""
