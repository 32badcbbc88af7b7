"""The development chain brownie launches (configured by scripts/setup_brownie.py)."""
from brownie import web3


def test_chain_has_the_eip2537_bls_precompiles():
    """Prague hardfork: BLS12_G1ADD (0x0b) adds two G1 points; with the point at infinity
    twice the answer is the point at infinity (128 zero bytes). Before Prague the address
    is empty and the call returns nothing."""
    out = web3.eth.call({"to": "0x000000000000000000000000000000000000000b", "data": "0x" + "00" * 256})
    assert bytes(out) == bytes(128)
    # a malformed input (wrong length) is rejected by the precompile, not silently accepted
    try:
        web3.eth.call({"to": "0x000000000000000000000000000000000000000b", "data": "0x" + "00" * 255})
        rejected = False
    except Exception:
        rejected = True
    assert rejected


def test_blocks_have_zero_base_fee():
    assert web3.eth.get_block("latest")["baseFeePerGas"] == 0
