"""Where a node's content comes from and goes to: its peers' gateways (advertised on-chain in
PeerDirectory), the operator's configured gateways and Kubo; and its own gateway.

    content = NodeContent.start(local, chain, listen="127.0.0.1:0", gateways=[...], ipfs_api=None)
    content.store      # a FetchingStore: what the trainer / verifier use
    content.gateway    # the GatewayServer serving `local` (None when listen is None)
    content.close()

The peer list is read from the chain (EndpointSet events of PeerDirectory, the latest URL
of each address, only addresses with stake, never this node's own) and cached for `ttl`
seconds; peers are asked in the order they registered, then by past success (the Fetcher).
"""
from __future__ import annotations

import logging
import threading
import time

from node.store.fetch import Fetcher, FetchingStore, GatewaySource, KuboSource, Source
from node.store.gateway import GatewayServer, parse_listen

log = logging.getLogger("trainchain.peers")

PEER_DIRECTORY = "PeerDirectory"


def peer_directory(chain):
    """The PeerDirectory binding of this deployment, or None (an older deployment)."""
    address = (chain.deployment.addresses.get(PEER_DIRECTORY) if chain.deployment else None)
    if not address:
        return None
    from node.chain.contracts import contract

    return contract(chain.w3, PEER_DIRECTORY, address)


def latest_endpoints(events: list[dict]) -> dict[str, str]:
    """{address: url} from EndpointSet events (oldest first): the last word of each address,
    in the order addresses first registered; an empty URL (cleared) removes the address."""
    out: dict[str, str] = {}
    for e in events:
        who, url = e["args"]["who"], e["args"]["url"]
        if url:
            out.setdefault(who, url)
            out[who] = url
        else:
            out.pop(who, None)
    return out


class ChainPeers:
    """Staked peers' gateway URLs from PeerDirectory, cached for `ttl` seconds."""

    def __init__(self, chain, exclude: tuple[str, ...] = (), ttl: float = 10.0):
        self.chain = chain
        self.directory = peer_directory(chain)
        self.exclude = {a.lower() for a in exclude if a}
        self.ttl = ttl
        self._lock = threading.Lock()
        self._events: list[dict] = []
        self._next_block = chain.deployment.deploy_block if chain.deployment else 0
        self._cached: list[tuple[str, str]] = []
        self._at = -1e9

    def endpoints(self) -> list[tuple[str, str]]:
        """[(address, url)] of staked peers, in registration order."""
        if self.directory is None:
            return []
        with self._lock:
            if time.monotonic() - self._at < self.ttl:
                return list(self._cached)
            try:
                head = self.chain.block_number()
                if head >= self._next_block:
                    logs = self.directory.events.EndpointSet.get_logs(from_block=self._next_block, to_block=head)
                    self._events += [{"args": dict(e["args"])} for e in logs]
                    self._next_block = head + 1
                peers = []
                for who, url in latest_endpoints(self._events).items():
                    if who.lower() in self.exclude:
                        continue
                    if self.chain.call(self.chain.stake_manager.functions.stake_of(who)) > 0:
                        peers.append((who, url))
                self._cached, self._at = peers, time.monotonic()
            except Exception as exc:  # the chain is down: keep the last list, say so
                log.warning("peers: cannot read PeerDirectory (%s); using the last list", exc)
            return list(self._cached)


class SourceSet:
    """The sources of one node: chain peers (first), configured gateways, Kubo. Source
    objects are kept per URL so their connection pools live across fetches."""

    def __init__(self, peers: ChainPeers | None = None, gateways: list[str] = (), ipfs_api: str | None = None):
        self.peers = peers
        self.gateways = [GatewaySource(u, f"gateway {u}") for u in gateways]
        self.kubo = KuboSource(ipfs_api) if ipfs_api else None
        self._by_url: dict[str, GatewaySource] = {}

    def __call__(self) -> list[Source]:
        out: list[Source] = []
        for who, url in (self.peers.endpoints() if self.peers else []):
            if url not in self._by_url:
                self._by_url[url] = GatewaySource(url, f"peer {who[:10]} {url}")
            out.append(self._by_url[url])
        out += self.gateways
        if self.kubo is not None:
            out.append(self.kubo)
        return out


def advertise_or_warn(chain, url: str) -> bool:
    """advertise(), but a failure (RPC down, a revert) is a warning, not a node that will not
    start: the node still verifies and trains; only its peers cannot fetch from it yet."""
    try:
        return advertise(chain, url)
    except Exception as exc:  # noqa: BLE001 (any chain error: say it, keep going)
        log.warning("peers: could not advertise gateway %s (%s); peers cannot fetch from this node", url, exc)
        return False


def advertise(chain, url: str) -> bool:
    """Set this node's endpoint in PeerDirectory unless it already says `url`; False (logged)
    when there is no directory or this key has no stake yet."""
    directory = peer_directory(chain)
    if directory is None or chain.account is None:
        return False
    if chain.call(directory.functions.endpoint_of(chain.address)) == url:
        return True
    if chain.call(chain.stake_manager.functions.stake_of(chain.address)) == 0:
        log.warning("peers: %s has no stake, so it cannot advertise its gateway %s yet", chain.address, url)
        return False
    chain.transact(directory.functions.set_endpoint(url), what="advertise gateway")
    log.info("peers: advertised gateway %s for %s", url, chain.address)
    return True


class NodeContent:
    """A node's content plumbing: the fetching store over `local` and the gateway serving `local`."""

    def __init__(self, store: FetchingStore, gateway: GatewayServer | None):
        self.store, self.gateway = store, gateway

    @classmethod
    def start(cls, local, chain=None, listen: str | None = "127.0.0.1:0", public_url: str | None = None,
              gateways: list[str] = (), ipfs_api: str | None = None, budget_s: float = 120.0,
              timeout: float = 10.0, parallel: int = 8, advertise_endpoint: bool = True) -> "NodeContent":
        peers = ChainPeers(chain, exclude=(chain.address,) if chain is not None else ()) if chain is not None else None
        fetcher = Fetcher(local, SourceSet(peers, list(gateways), ipfs_api), timeout=timeout, parallel=parallel)
        gateway = None
        if listen:
            gateway = GatewayServer(local, parse_listen(listen), public_url).start()
            log.info("gateway: serving %s at %s", local, gateway.url)
            if chain is not None and advertise_endpoint:
                advertise_or_warn(chain, gateway.url)
        return cls(FetchingStore(local, fetcher, budget_s), gateway)

    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()
        self.store.fetcher.close()


def node_content(cfg, chain, local) -> NodeContent:
    """NodeContent for a node process from its NodeConfig. With an embedded store the node
    fetches from peers and configured gateways; with a Kubo store (cfg.ipfs_api) the daemon
    fetches over its own swarm and the node only serves it."""
    from node.store.embedded import EmbeddedStore

    if not isinstance(local, EmbeddedStore):
        gateway = None
        if cfg.gateway_listen:
            gateway = GatewayServer(local, parse_listen(cfg.gateway_listen), cfg.gateway_url).start()
            advertise_or_warn(chain, gateway.url)
        return _Passthrough(local, gateway)
    return NodeContent.start(local, chain, listen=cfg.gateway_listen or None, public_url=cfg.gateway_url,
                             gateways=cfg.ipfs_gateways, budget_s=cfg.fetch_budget, timeout=cfg.fetch_timeout)


class _Passthrough(NodeContent):
    def close(self) -> None:
        if self.gateway is not None:
            self.gateway.stop()


def fetching_store(cfg, chain, local):
    """For one-shot commands (model pull, generate): fetch from peers, serve nothing."""
    from node.store.embedded import EmbeddedStore

    if not isinstance(local, EmbeddedStore):
        return local
    return NodeContent.start(local, chain, listen=None, gateways=cfg.ipfs_gateways, budget_s=cfg.fetch_budget,
                             timeout=cfg.fetch_timeout).store
