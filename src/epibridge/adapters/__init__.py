"""Adapters turn one input format into a raw table of strings. See ``adapters.base``."""
