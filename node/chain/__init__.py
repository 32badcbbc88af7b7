"""The chain side: deployment (contracts.py, devnet.py), RPC + transactions (client.py), typed records (records.py).

Everything the node knows about Ethereum goes through here; chain state is decoded once, into
records.py's frozen dataclasses, at this boundary.
"""
