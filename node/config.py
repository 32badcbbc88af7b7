"""Node configuration: CLI flags > TRAINCHAIN_* env > `<datadir>/config.toml` > defaults.

    cfg = load_config(datadir="/tmp/dd", rpc_urls=["http://127.0.0.1:8545"])
    cfg.deployment_path  # <datadir>/deployment.json unless set

The data dir itself comes from the flag, else TRAINCHAIN_DATADIR, else the per-OS user
data dir (platformdirs). Lists from env accept JSON or commas:
TRAINCHAIN_RPC_URLS=http://a:8545,http://b:8545.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from node.errors import ConfigError

CONFIG_FILE = "config.toml"
DEFAULT_RPC = "http://127.0.0.1:8545"


def default_datadir() -> Path:
    """TRAINCHAIN_DATADIR, else the per-OS user data dir (~/.local/share/trainchain on Linux)."""
    env = os.environ.get("TRAINCHAIN_DATADIR")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("trainchain"))


class NodeConfig(BaseSettings):
    """Everything a node or a CLI command needs to find its chain, keys and store."""

    model_config = SettingsConfigDict(env_prefix="TRAINCHAIN_", extra="forbid", validate_default=True)

    datadir: Path = Field(default_factory=default_datadir)  # keys, db, deployment, locks
    # tried in order, failover on error; None = the deployment's rpc_urls, else DEFAULT_RPC
    rpc_urls: Annotated[list[str] | None, NoDecode] = None
    deployment_file: Path | None = None  # default <datadir>/deployment.json
    account: str | None = None  # address of the keystore to use
    password_file: Path | None = None  # headless unlock; else prompt
    ipfs_api: str | None = None  # Kubo RPC multiaddr/URL; None = embedded store
    metrics_port: int | None = Field(default=None, ge=0, le=65535)  # Prometheus; None = off
    log_level: str = "INFO"
    tx_timeout: float = Field(default=120.0, gt=0)  # give up on a transaction after this
    tx_replace_after: float = Field(default=20.0, gt=0)  # re-send with higher fees after this
    rpc_retries: int = Field(default=5, ge=1)  # full passes over rpc_urls before giving up
    rpc_backoff: float = Field(default=0.5, ge=0)  # first wait between passes; doubles
    rpc_timeout: float = Field(default=10.0, gt=0)  # one HTTP request
    poll_interval: float = Field(default=0.5, gt=0)  # block polling
    # Content between machines (node/store/peers.py): the gateway this node serves its store
    # on ("host:port", port 0 = any free one; "" = off) and advertises in PeerDirectory
    # (gateway_url when peers must use another address: NAT, a proxy); extra trustless
    # gateways to fetch from (public ones, a seeder); the fetch budget and per-request timeout.
    gateway_listen: str = "127.0.0.1:0"
    gateway_url: str | None = None
    ipfs_gateways: Annotated[list[str], NoDecode] = []
    fetch_budget: float = Field(default=120.0, gt=0)
    fetch_timeout: float = Field(default=10.0, gt=0)

    @field_validator("rpc_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                import json

                return json.loads(value)
            return [u.strip() for u in value.split(",") if u.strip()]
        return value

    @field_validator("rpc_urls")
    @classmethod
    def _check_urls(cls, urls: list[str] | None) -> list[str] | None:
        if urls is None:
            return None
        if not urls:
            raise ValueError("at least one RPC URL is needed")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"RPC URL {url!r} must start with http:// or https://")
        return urls

    @field_validator("ipfs_gateways", mode="before")
    @classmethod
    def _split_gateways(cls, value: Any) -> Any:
        return cls._split_urls(value)

    @field_validator("ipfs_gateways")
    @classmethod
    def _check_gateways(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"gateway URL {url!r} must start with http:// or https://")
        return urls

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, level: str) -> str:
        level = level.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        return level

    @property
    def deployment_path(self) -> Path:
        return self.deployment_file or self.datadir / "deployment.json"

    @property
    def config_path(self) -> Path:
        return self.datadir / CONFIG_FILE

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file lives in the data dir, so find the data dir first.
        flag = getattr(init_settings, "init_kwargs", {}).get("datadir")
        datadir = Path(flag).expanduser() if flag else default_datadir()
        toml = TomlConfigSettingsSource(settings_cls, toml_file=datadir / CONFIG_FILE)
        return (init_settings, env_settings, toml)


def load_config(**flags: Any) -> NodeConfig:
    """Build the config; flags that are None are 'not given' (env/file/default apply).

    Raises ConfigError naming the offending field and file on any bad value.
    """
    given = {k: v for k, v in flags.items() if v is not None and v != ()}
    if "rpc_urls" in given:
        given["rpc_urls"] = list(given["rpc_urls"])
    datadir = Path(given["datadir"]).expanduser() if "datadir" in given else default_datadir()
    config_file = datadir / CONFIG_FILE
    try:
        return NodeConfig(**given)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{config_file}: not valid TOML: {e}") from None
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'config'}: {err['msg']}" for err in e.errors()
        )
        raise ConfigError(
            f"bad configuration ({problems}); sources: flags, TRAINCHAIN_* env, {config_file}"
        ) from None
