"""Helpers shared by the multi-process node tests (imported by name: tests/ has no packages)."""
from __future__ import annotations

# what every node process of these tests runs with (short timeouts: a loaded 2-core machine)
NODE_CONFIG = "tx_replace_after = 5.0\ntx_timeout = 60.0\npoll_interval = 0.25\nrpc_backoff = 0.3\n"


def tiny_spec(store):
    """The tiny preset with the windows these tests need, its dataset built into `store`."""
    from node.engine import TaskSpec, build_dataset, demo_corpus_paths

    spec = TaskSpec.preset("tiny").with_(protocol={
        "samples": 1, "seal_delay_blocks": 1, "reveal_window": 24,
        # generous committee windows: a restarted verifier re-imports torch (slow on a loaded 2-core
        # machine) before it can reveal; rounds end early anyway once everyone has acted
        "commit_verdicts_window": 80, "reveal_verdicts_window": 120,
    })
    return spec.with_(dataset={"manifest_cid": build_dataset(demo_corpus_paths(200_000), store)})


def start_disputes_net(root):
    """A started LocalNet deployed with Disputes and Appeals (0.5 s blocks); the tiny spec's runtime pinned in this
    process first (its genesis and dataset are built here)."""
    from node.chain.contracts import DeployParams
    from node.engine import TaskSpec, apply_runtime_pin
    from node.engine.runtime import is_torch_loaded
    from node.localnet import LocalNet

    if not is_torch_loaded():
        apply_runtime_pin(TaskSpec.preset("tiny"))
    return LocalNet(root, block_time=0.5, deploy_params=DeployParams(disputes=True)).start()
