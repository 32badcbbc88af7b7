"""Deploy and wire the protocol contracts with brownie.

    .venv/bin/python scripts/brownie_launcher.py run scripts/deploy.py [--network NAME]

The node itself deploys with node.chain.contracts.deploy (web3, no brownie); this script is for
brownie users and prints the same {name: address} mapping as JSON.
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from node.chain.contracts import WIRING, DeployParams  # noqa: E402  (one wiring table, one set of defaults)


def deploy_all(deployer, p: DeployParams = DeployParams()) -> dict:
    """Deploy the contracts with brownie and wire them as node.chain.contracts.deploy does (WIRING,
    then finish_wiring); {name: Contract}. tests/contracts deploys through this too."""
    from brownie import Epochs, ModelOracle, StakeManager, TaskRegistry, TrainingRounds

    stake_manager = StakeManager.deploy(p.min_trainer_stake, p.min_verifier_stake, p.unbonding_blocks, {"from": deployer})
    oracle = ModelOracle.deploy({"from": deployer})
    registry = TaskRegistry.deploy(stake_manager, oracle, p.task_bounds, {"from": deployer})
    rounds = TrainingRounds.deploy(stake_manager, registry, {"from": deployer})
    epochs = Epochs.deploy(stake_manager, registry, rounds, {"from": deployer})
    rounds.set_epochs(epochs, {"from": deployer})
    deployed = {"StakeManager": stake_manager, "ModelOracle": oracle, "TaskRegistry": registry, "TrainingRounds": rounds,
                "Epochs": epochs}
    for name, callers in WIRING.items():
        for caller in callers:
            deployed[name].authorize(deployed[caller], {"from": deployer})
        deployed[name].finish_wiring({"from": deployer})
    return deployed


def main():
    from brownie import accounts

    addresses = {name: c.address for name, c in deploy_all(accounts[0]).items()}
    print(json.dumps(addresses))
    return addresses
