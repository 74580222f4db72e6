"""Ports: the small interfaces use cases need, implemented by adapters (``typing.Protocol``s)."""
