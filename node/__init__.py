"""trainchain node runtime: protocol rules, engine, content store, chain client, trainer."""

__version__ = "0.1.0"
