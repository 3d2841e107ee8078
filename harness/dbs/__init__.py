"""Databases clew can install and operate on nodes (each implements :class:`harness.api.DB`)."""
