"""HTML reports of runs and an index of all runs.

Not built yet: this package is reserved by the design (see the reports issue).
"""
