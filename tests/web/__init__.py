"""Tests of the hub's web dashboard."""
