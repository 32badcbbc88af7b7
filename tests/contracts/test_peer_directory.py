"""PeerDirectory: stakers advertise the trustless gateway their content is served from."""
import brownie
import pytest
from brownie import PeerDirectory

from node import protocol as P


@pytest.fixture(scope="module")
def peers(c, deployer):
    return PeerDirectory.deploy(c.sm, {"from": deployer})


def test_a_staker_sets_replaces_and_clears_its_endpoint(c, peers, trainer):
    c.sm.stake(P.TRAINER, {"from": trainer, "value": 10**18})
    tx = peers.set_endpoint("http://203.0.113.7:8081", {"from": trainer})
    assert tx.events["EndpointSet"]["who"] == trainer and tx.events["EndpointSet"]["url"] == "http://203.0.113.7:8081"
    assert peers.endpoint_of(trainer) == "http://203.0.113.7:8081"
    peers.set_endpoint("https://node.example.org/gw", {"from": trainer})
    assert peers.endpoint_of(trainer) == "https://node.example.org/gw"
    tx = peers.clear_endpoint({"from": trainer})
    assert tx.events["EndpointSet"]["url"] == "" and peers.endpoint_of(trainer) == ""
    with brownie.reverts("peers: no endpoint to clear"):
        peers.clear_endpoint({"from": trainer})


def test_only_stakers_advertise(peers, outsider):
    with brownie.reverts("peers: only stakers advertise an endpoint"):
        peers.set_endpoint("http://198.51.100.1:8081", {"from": outsider})
    assert peers.endpoint_of(outsider) == ""


@pytest.mark.parametrize("url, reason", [
    ("", "peers: url too short"),
    ("http://", "peers: url too short"),
    ("ftp://example.org/x", "peers: url must start with http:// or https://"),
    ("javascript:alert(1)//", "peers: url must start with http:// or https://"),
    ("http://" + "a" * 250, "peers: url longer than 256 bytes"),
])
def test_bad_urls_are_refused_with_a_reason(c, peers, verifiers, url, reason):
    v = verifiers[0]
    c.sm.stake(P.VERIFIER, {"from": v, "value": 10**18})
    with brownie.reverts(reason):
        peers.set_endpoint(url, {"from": v})


def test_the_longest_allowed_url_is_kept(c, peers, verifiers):
    v = verifiers[1]
    c.sm.stake(P.VERIFIER, {"from": v, "value": 10**18})
    url = "https://" + "b" * 248
    assert len(url) == 256
    peers.set_endpoint(url, {"from": v})
    assert peers.endpoint_of(v) == url


def test_the_constructor_refuses_the_zero_address(deployer):
    with brownie.reverts("peers: stake manager is the zero address"):
        PeerDirectory.deploy("0x" + "00" * 20, {"from": deployer})
