"""The dapp's local server (server.py: the page, ABIs, /ipfs) and its import map of node_modules (importmap.py)."""
