"""Database clients (each implements :class:`harness.api.Client`)."""
