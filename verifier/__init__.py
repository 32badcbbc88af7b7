"""trainchain verifier: segment replay and the verifier node."""
