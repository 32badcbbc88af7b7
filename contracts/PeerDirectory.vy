# pragma version 0.4.3
"""
@title PeerDirectory
@notice Where each staker's content can be fetched: one IPFS trustless-gateway URL per
        staked address (serving `/ipfs/<cid>?format=raw|car`). Nodes on other machines
        read it to fetch the checkpoints, datasets and weights a round names by CID;
        every block they fetch is verified against its CID, so a wrong URL costs the
        fetcher a retry with the next peer, never wrong data.
@dev Kept out of TrainingRounds (EIP-170: no room there). Only a current staker may
     set an endpoint, so the directory cannot be flooded by addresses that risk
     nothing; an endpoint outlives its stake until cleared (readers skip unstaked
     addresses by calling StakeManager themselves).
"""

interface IStakeManager:
    def stake_of(who: address) -> uint256: view

MAX_URL: constant(uint256) = 256
# The type's bound is wider than the rule's (MAX_URL) so that an over-long URL reverts
# with a reason; past the type's bound the ABI decoder reverts without one.
MAX_URL_INPUT: constant(uint256) = 1_024

event EndpointSet:
    who: indexed(address)
    url: String[MAX_URL_INPUT]  # empty: cleared; never longer than MAX_URL

stake_manager: public(immutable(address))
endpoint_of: public(HashMap[address, String[MAX_URL_INPUT]])  # never longer than MAX_URL


@deploy
def __init__(stake_manager_: address):
    """
    @param stake_manager_ The StakeManager whose stakers may advertise an endpoint.
    """
    assert stake_manager_ != empty(address), "peers: stake manager is the zero address"
    stake_manager = stake_manager_


@external
def set_endpoint(url: String[MAX_URL_INPUT]):
    """
    @notice Advertise (or replace) msg.sender's gateway URL, e.g. "http://203.0.113.7:8081".
    @param url An http:// or https:// base URL of at most 256 bytes.
    """
    assert staticcall IStakeManager(stake_manager).stake_of(msg.sender) > 0, "peers: only stakers advertise an endpoint"
    assert len(url) <= MAX_URL, "peers: url longer than 256 bytes"
    # Verify the scheme: a fetcher only speaks HTTP(S) to a gateway.
    assert len(url) > 8, "peers: url too short"
    assert slice(url, 0, 7) == "http://" or slice(url, 0, 8) == "https://", "peers: url must start with http:// or https://"
    self.endpoint_of[msg.sender] = url
    log EndpointSet(who=msg.sender, url=url)


@external
def clear_endpoint():
    """
    @notice Stop advertising msg.sender's endpoint (anyone may clear their own, staked or not).
    """
    assert len(self.endpoint_of[msg.sender]) > 0, "peers: no endpoint to clear"
    self.endpoint_of[msg.sender] = ""
    log EndpointSet(who=msg.sender, url="")
