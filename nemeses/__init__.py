"""Faults: partitions, pauses, kills, clock skew and packet faults, with guaranteed heal.

Not built yet: this package is reserved by the design (see the nemeses issue).
"""
