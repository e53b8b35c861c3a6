"""Routing and access checks: commands and buttons to flows and queries."""
