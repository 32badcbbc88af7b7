"""Deploy and wire the protocol contracts with brownie.

    .venv/bin/python scripts/brownie_launcher.py run scripts/deploy.py [--network NAME]

The node itself deploys with node.contracts.deploy (web3, no brownie); this script is for
brownie users and prints the same {name: address} mapping as JSON.
"""
import json

from brownie import ModelOracle, StakeManager, TrainingRounds, accounts

MIN_TRAINER_STAKE = 10**18
MIN_VERIFIER_STAKE = 10**18
UNBONDING_BLOCKS = 20


def main():
    deployer = accounts[0]
    stake_manager = StakeManager.deploy(MIN_TRAINER_STAKE, MIN_VERIFIER_STAKE, UNBONDING_BLOCKS, {"from": deployer})
    oracle = ModelOracle.deploy({"from": deployer})
    rounds = TrainingRounds.deploy(stake_manager, oracle, {"from": deployer})
    stake_manager.set_rounds(rounds, {"from": deployer})
    oracle.set_writer(rounds, {"from": deployer})
    addresses = {"StakeManager": stake_manager.address, "ModelOracle": oracle.address, "TrainingRounds": rounds.address}
    print(json.dumps(addresses))
    return addresses
