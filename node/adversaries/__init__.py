"""Misbehaving nodes for the demo and the adversarial suite only (never a `trainchain` flag).

trainers.py: TrainerNode subclasses that cheat; verifiers.py: MisbehavingVerifier;
`python -m node.adversaries ...` runs a dishonest trainer as a process (__main__.py).
Each is the honest node with one thing changed; the honest code has no cheat hooks.
"""
