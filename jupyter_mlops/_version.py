"""The package version, in a module that imports nothing (the CLI, the bundle and the cache
key read it without loading anything else)."""

__version__ = "0.1.0"
