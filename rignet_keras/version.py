"""The version of rignet-keras."""

__version__ = "0.1.0"
