"""Config precedence (flags > TRAINCHAIN_* env > <datadir>/config.toml > defaults) and amounts."""
from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node.chain.records import format_ether
from node.cli.options import MAX_WEI, parse_amount
from node.config import load_config
from node.errors import AmountError, ConfigError


def test_precedence_flag_env_file_default(tmp_path, monkeypatch):
    (tmp_path / "config.toml").write_text('rpc_urls = ["http://file:1"]\ntx_timeout = 11\nlog_level = "debug"\n')
    cfg = load_config(datadir=tmp_path)
    assert (cfg.rpc_urls, cfg.tx_timeout, cfg.log_level, cfg.rpc_retries) == (["http://file:1"], 11, "DEBUG", 5)
    monkeypatch.setenv("TRAINCHAIN_RPC_URLS", "http://env:1,http://env:2")
    monkeypatch.setenv("TRAINCHAIN_TX_TIMEOUT", "22")
    cfg = load_config(datadir=tmp_path)
    assert (cfg.rpc_urls, cfg.tx_timeout) == (["http://env:1", "http://env:2"], 22)
    cfg = load_config(datadir=tmp_path, rpc_urls=("http://flag:1",), tx_timeout=None)
    assert (cfg.rpc_urls, cfg.tx_timeout) == (["http://flag:1"], 22)  # None = flag not given
    assert cfg.deployment_path == tmp_path / "deployment.json"


def test_datadir_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TRAINCHAIN_DATADIR", str(tmp_path))
    (tmp_path / "config.toml").write_text('account = "0x' + "12" * 20 + '"\n')
    cfg = load_config()
    assert cfg.datadir == tmp_path and cfg.account == "0x" + "12" * 20


@pytest.mark.parametrize("content,message", [
    ("tx_timeout = \n", "not valid TOML"),
    ("bogus = 1\n", "bogus: Extra inputs are not permitted"),
    ('rpc_urls = ["ftp://x"]\n', "must start with http:// or https://"),
    ("tx_timeout = -1\n", "tx_timeout: Input should be greater than 0"),
    ('log_level = "loud"\n', "is not one of DEBUG"),
])
def test_bad_config_file_names_the_problem(tmp_path, content, message):
    (tmp_path / "config.toml").write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_config(datadir=tmp_path)
    assert str(tmp_path / "config.toml") in str(info.value)


def test_bad_config_through_the_cli(cli_run, tmp_path):
    (tmp_path / "config.toml").write_text("metrics_port = 99999\n")
    r = cli_run("keys", "list", "--datadir", tmp_path, ok=False)
    assert "metrics_port" in r.output and "Traceback" not in r.output


@pytest.mark.parametrize("text,wei", [
    ("1", 10**18), ("1.5", 15 * 10**17), ("1.5eth", 15 * 10**17), ("2 ETHER", 2 * 10**18),
    ("1000000gwei", 10**15), ("7wei", 7), (".25", 25 * 10**16), ("1_000wei", 1000),
])
def test_parse_amount(text, wei):
    assert parse_amount(text) == wei


@pytest.mark.parametrize("text", ["", "eth", "1..2", "1e18", "0x10", "1 2", "--1"])
def test_parse_amount_rejects(text):
    with pytest.raises(AmountError):
        parse_amount(text)


@given(st.integers(min_value=1, max_value=MAX_WEI))
def test_amount_round_trips_through_every_unit(wei):
    assert parse_amount(f"{wei}wei") == wei
    assert parse_amount(format_ether(wei).replace(" ETH", "eth")) == wei
    with localcontext(prec=100):
        gwei = Decimal(wei) / 10**9
    assert parse_amount(format(gwei, "f") + "gwei") == wei


@given(st.integers(min_value=MAX_WEI + 1, max_value=MAX_WEI * 10))
def test_amounts_beyond_uint256_are_refused(wei):
    with pytest.raises(AmountError, match="out of range"):
        parse_amount(f"{wei}wei")
