"""trainchain node runtime: rules (protocol, rounds), engine/, store/, chain/, roles/, adversaries/, cli/ (DEVELOPERS.md has the map)."""

__version__ = "0.1.0"
