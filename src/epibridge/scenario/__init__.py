"""Synthetic scenarios for the demo: seeded, documented data with known answers.

The Mekong countries publish no weekly dengue data, so the demo generates them here
(:mod:`epibridge.scenario.mekong`) and writes them in each country's own national format
(:mod:`epibridge.scenario.formats`). Everything in this package is synthetic; see
docs/scenario.md.
"""
