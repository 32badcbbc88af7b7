"""`trainchain dapp serve` without a browser: the read-only, verified /ipfs path, the
import map, the ABIs, and that nothing outside the served roots is reachable."""
from __future__ import annotations

import http.client
import json
import os
import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from node.cli.dapp import dapp as dapp_cli
from node.dapp.importmap import build_import_map
from node.dapp.server import NODE_MODULES, DappServerConfig, make_server, resolve_inside
from node.store import open_store
from node.store.cid import compute_cid
from node.store.gateway import CAR, RAW_BLOCK

CHUNK = 256 * 1024


@pytest.fixture(scope="module")
def datadir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("dapp-server")


@pytest.fixture(scope="module")
def server(datadir):
    srv = make_server(DappServerConfig(datadir=datadir, page_config={"rpc": "http://127.0.0.1:1"}), port=0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)


def request(server, path: str, method: str = "GET", headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One raw request: the path goes out exactly as written (no client-side normalization)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def find_block_file(datadir: Path, content: bytes) -> Path:
    """The embedded store's file that holds exactly `content` (a raw leaf)."""
    for path in (datadir / "ipfs").rglob("*"):
        if path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content:
            return path
    raise AssertionError("block file not found")


# ---------------------------------------------------------------- /ipfs
def test_ipfs_serves_verified_content(server, datadir):
    data = os.urandom(3 * CHUNK + 123)  # four leaves under a dag-pb root
    cid = open_store(datadir).put_bytes(data)
    assert cid == compute_cid(data)
    status, headers, body = request(server, f"/ipfs/{cid}")
    assert status == 200 and body == data
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(len(data))
    assert headers["etag"] == f'"{cid}"'
    # Stranger-supplied bytes never run as script on the dapp's origin.
    assert headers["content-security-policy"] == "sandbox"
    assert headers["x-content-type-options"] == "nosniff"
    status, headers, body = request(server, f"/ipfs/{cid}", method="HEAD")
    assert status == 200 and body == b"" and headers["content-length"] == str(len(data))


def test_ipfs_trustless_raw_block_and_car(server, datadir, tmp_path):
    data = os.urandom(2 * CHUNK + 7)
    cid = open_store(datadir).put_bytes(data)
    small = b"a single raw leaf"
    small_cid = open_store(datadir).put_bytes(small)

    status, headers, body = request(server, f"/ipfs/{small_cid}?format=raw")
    assert (status, headers["content-type"], body) == (200, RAW_BLOCK, small)
    status, headers, body = request(server, f"/ipfs/{small_cid}", headers={"Accept": RAW_BLOCK})
    assert (status, body) == (200, small)
    status, _, root_block = request(server, f"/ipfs/{cid}?format=raw")
    assert status == 200 and root_block != data[: len(root_block)]  # the dag-pb root, not file bytes

    # The CAR carries every block; a fresh store imports it (verifying each) and rebuilds the file.
    status, headers, car = request(server, f"/ipfs/{cid}?format=car")
    assert status == 200 and headers["content-type"] == CAR and headers["content-length"] == str(len(car))
    (tmp_path / "x.car").write_bytes(car)
    fresh = open_store(tmp_path / "fresh")
    assert cid in fresh.import_car(tmp_path / "x.car")
    assert fresh.get_bytes(cid) == data
    status, _, car_by_accept = request(server, f"/ipfs/{cid}", headers={"Accept": CAR})
    assert status == 200 and car_by_accept == car


@pytest.mark.parametrize("path, status, words", [
    ("/ipfs/not-a-cid", 400, "ipfs:"),
    (f"/ipfs/{compute_cid(b'never stored')}", 404, "ipfs:"),
    (f"/ipfs/{compute_cid(b'x')}/inner/path", 400, "no paths inside a CID"),
    (f"/ipfs/{compute_cid(b'x')}?format=tar", 400, "unknown format"),
    ("/ipfs/", 400, "only /ipfs/<cid>"),
])
def test_ipfs_bad_requests_say_why(server, path, status, words):
    got, headers, body = request(server, path)
    assert got == status
    assert words in body.decode()


def test_ipfs_never_serves_a_corrupted_block(server, datadir):
    store = open_store(datadir)
    data = os.urandom(3 * CHUNK)
    cid = store.put_bytes(data)
    # Corrupt the second leaf on disk: the response is cut before it, never wrong bytes.
    leaf = find_block_file(datadir, data[CHUNK: 2 * CHUNK])
    bad = bytearray(leaf.read_bytes())
    bad[0] ^= 0xFF
    leaf.write_bytes(bytes(bad))
    conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=10)
    conn.request("GET", f"/ipfs/{cid}")
    res = conn.getresponse()
    assert res.status == 200
    with pytest.raises(http.client.IncompleteRead) as cut:
        res.read()
    conn.close()
    assert cut.value.partial == data[:CHUNK]
    # A corrupted first block fails before any header: a clear 502.
    first = find_block_file(datadir, data[:CHUNK])
    first.write_bytes(b"\0" + first.read_bytes()[1:])
    status, _, body = request(server, f"/ipfs/{cid}")
    assert status == 502 and b"ipfs:" in body


# ---------------------------------------------------------------- read-only, no escape
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_server_is_read_only(server, method):
    status, headers, body = request(server, "/ipfs/x", method=method)
    assert status == 405 and headers["allow"] == "GET, HEAD" and b"read-only" in body


@pytest.mark.parametrize("path", [
    "/../pyproject.toml",
    "/%2e%2e/pyproject.toml",
    "/..%2fpyproject.toml",
    "/vendor/../../pyproject.toml",
    "/vendor/viem/../../pyproject.toml",
    "/vendor/viem/..%2f..%2f..%2fpyproject.toml",
    "/vendor/.bin/anvil",
    "/vendor/viem/README.md",            # not a .js/.mjs/.json file
    "/vendor/ipfs/package.json",         # installed, but not a dependency of the page
    "/vendor/playwright-core/package.json",
    "/.git/config",
    "/%00index.html",
    "/app.js%00.png",
    "//etc/passwd",
])
def test_paths_outside_the_served_roots_are_not_found(server, path):
    status, _, body = request(server, path)
    assert status == 404, body


def test_page_files_and_config(server):
    status, headers, body = request(server, "/")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"/vendor/importmap.js" in body
    for name, kind in [("app.js", "text/javascript"), ("oracle.js", "text/javascript"), ("style.css", "text/css")]:
        status, headers, _ = request(server, f"/{name}")
        assert status == 200 and headers["content-type"].startswith(kind), name
    assert json.loads(request(server, "/config.json")[2]) == {"rpc": "http://127.0.0.1:1"}


# ---------------------------------------------------------------- vendor + ABIs
def test_import_map_points_at_served_files(server):
    status, _, script = request(server, "/vendor/importmap.js")
    assert status == 200
    # The map is embedded as a JSON string literal inside the script.
    literal = script.decode().split("map.textContent = ", 1)[1].split(";\n", 1)[0]
    import_map = json.loads(json.loads(literal))
    assert import_map == build_import_map(NODE_MODULES)
    assert import_map["imports"]["viem"] == "/vendor/viem/_esm/index.js"
    # isows resolves to its browser build (native WebSocket), not the Node one.
    assert import_map["imports"]["isows"].endswith("/_esm/native.js")
    targets = list(import_map["imports"].values()) + [t for scope in import_map["scopes"].values() for t in scope.values()]
    for url in targets:
        status, headers, _ = request(server, url, method="HEAD")
        assert status == 200, url


def test_abis_come_from_the_compiled_contracts(server):
    from node.chain.contracts import abi

    status, _, body = request(server, "/abi/ModelOracle.json")
    assert status == 200 and json.loads(body) == abi("ModelOracle")
    assert {"latest", "at", "authorized_callers"} <= {item.get("name") for item in json.loads(body)}
    status, _, body = request(server, "/abi/Nope.json")
    assert status == 404 and b"no contract named" in body


# ---------------------------------------------------------------- CLI
def test_serve_reports_a_port_in_use(datadir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(dapp_cli, ["serve", "--port", str(port), "--datadir", str(datadir)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


# ---------------------------------------------------------------- property: no escape
@pytest.fixture(scope="module")
def jail(tmp_path_factory) -> Path:
    """A served root with a file, a sub-folder, a dot-file and links pointing out of it."""
    base = tmp_path_factory.mktemp("jail")
    (base / "secret.txt").write_text("outside")
    root = base / "root"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("in")
    (root / "sub" / "a.js").write_text("in")
    (root / ".env").write_text("hidden")
    (root / "out").symlink_to(base)                 # a folder link out of the root
    (root / "sub" / "leak.js").symlink_to(base / "secret.txt")
    return root


SEGMENTS = st.sampled_from(["", ".", "..", "sub", "a.js", "index.html", ".env", "out", "leak.js", "secret.txt",
                            "%2e%2e", "..\\..", "\x00", "~", "root"])


@settings(max_examples=200, deadline=None)
@given(rel=st.lists(SEGMENTS, min_size=1, max_size=6).map("/".join) | st.text(max_size=40))
def test_resolve_inside_never_leaves_the_root(jail, rel):
    found = resolve_inside(jail, rel)
    if found is not None:
        assert found.is_file() and found.is_relative_to(jail.resolve())
        assert found.read_text() == "in"  # never the secret, never the dot-file


def test_resolve_inside_serves_plain_files(jail):
    assert resolve_inside(jail, "sub/a.js") == (jail / "sub" / "a.js").resolve()
    assert resolve_inside(jail, "out/secret.txt") is None
    assert resolve_inside(jail, "sub/leak.js") is None
    assert resolve_inside(jail, ".env") is None
    assert resolve_inside(jail, "\ud800.js") is None  # not encodable: no file, no crash
    assert resolve_inside(jail, "x" * 5000) is None     # name too long: no file, no crash


def test_serve_ignores_a_broken_deployment_file_and_says_so(tmp_path):
    import subprocess
    import sys
    from urllib.request import urlopen

    (tmp_path / "deployment.json").write_text("{not json")
    trainchain = str(Path(sys.executable).with_name("trainchain"))
    proc = subprocess.Popen([trainchain, "dapp", "serve", "--port", "0", "--json", "--datadir", str(tmp_path),
                             "--rpc", "http://127.0.0.1:9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        with urlopen(info["url"] + "config.json", timeout=10) as res:
            page_config = json.loads(res.read())
    finally:
        proc.terminate()
        proc.wait(10)
    stderr = proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    assert proc.returncode == 0, stderr  # SIGTERM is a clean stop
    assert info["rpc"] == "http://127.0.0.1:9" and "oracle" not in info
    assert page_config == {"rpc": "http://127.0.0.1:9"}
    assert "dapp: ignoring" in stderr and "deployment.json" in stderr
