"""Prometheus metrics of a node (`--metrics-port`): duty outcomes, stage timings, chain head.

Each node gets its own registry, so several nodes (or tests) in one process never
collide on metric names.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class NodeMetrics:
    def __init__(self, role: str):
        self.role = role
        self.registry = CollectorRegistry()
        self.duties = Counter(
            "trainchain_duties", "Duties performed, by duty and outcome.",
            ["role", "duty", "outcome"], registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "trainchain_stage_seconds", "Seconds per stage of a round (train, hash, upload, tx, wait, replay).",
            ["role", "stage"], buckets=STAGE_BUCKETS, registry=self.registry,
        )
        self.head_block = Gauge("trainchain_head_block", "Latest block seen.", ["role"], registry=self.registry)
        self.current_round = Gauge("trainchain_current_round", "Round the node is working on.", ["role"], registry=self.registry)
        self.rpc_errors = Counter("trainchain_rpc_errors", "Loop iterations that failed on RPC/store errors.", ["role"], registry=self.registry)
        self.last_loss = Gauge("trainchain_last_loss", "Mean training loss of the last round trained.", ["role"], registry=self.registry)

    def duty(self, duty: str, outcome: str) -> None:
        self.duties.labels(self.role, duty, outcome).inc()

    def stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(self.role, stage).observe(seconds)

    def head(self, block: int) -> None:
        self.head_block.labels(self.role).set(block)

    def round(self, round_id: int) -> None:
        self.current_round.labels(self.role).set(round_id)

    def rpc_error(self) -> None:
        self.rpc_errors.labels(self.role).inc()

    def loss(self, value: float) -> None:
        self.last_loss.labels(self.role).set(value)

    def serve(self, port: int, addr: str = "127.0.0.1"):
        """Expose /metrics on `port` (a daemon thread). Returns the server."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server

    def text(self) -> str:
        return generate_latest(self.registry).decode()
