"""Tests of identities, trust and sealing."""
