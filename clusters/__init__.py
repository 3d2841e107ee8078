"""Where nodes come from: local network namespaces, static SSH hosts, Vagrant, containers.

Not built yet: this package is reserved by the design (see the clusters issue).
"""
