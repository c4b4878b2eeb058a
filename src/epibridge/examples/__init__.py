"""Small standard example files shipped for the demo (sources in SOURCES.md)."""
