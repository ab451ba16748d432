"""Fake servers and helpers that let tests talk to real HTTP endpoints."""
