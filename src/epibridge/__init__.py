"""epibridge: cross-border disease-surveillance data exchange."""

__version__ = "0.1.0"
