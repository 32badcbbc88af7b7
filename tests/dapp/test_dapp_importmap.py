"""The import map generator on a small node_modules laid out like npm's."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.dapp.importmap import ImportMapError, allowed_dirs, build_import_map, resolve_target


def make_package(root: Path, name: str, manifest: dict, files: tuple[str, ...]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({"name": name, **manifest}))
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("export {};\n")


@pytest.fixture
def node_modules(tmp_path) -> Path:
    nm = tmp_path / "node_modules"
    make_package(nm / "app", "app", {"dependencies": {"@x/lib": "1", "old": "1"},
                                     "exports": {".": {"types": "./t.d.ts", "import": "./esm/index.js", "default": "./cjs.js"}}},
                 ("esm/index.js",))
    make_package(nm / "@x/lib", "@x/lib", {
        "dependencies": {"old": "2"},
        "exports": {
            ".": {"node": "./node.js", "browser": "./browser.js", "import": "./esm.js"},
            "./sub": [{"import": "./sub.js"}, "./sub.cjs"],
            "./missing": {"import": "./not-shipped.js"},
            "./*": "./*.js",
        }}, ("browser.js", "esm.js", "node.js", "sub.js"))
    make_package(nm / "@x/lib/node_modules/old", "old", {"module": "./v2.mjs"}, ("v2.mjs",))  # nested copy
    make_package(nm / "old", "old", {"main": "v1.js"}, ("v1.js",))
    make_package(nm / "unrelated", "unrelated", {"main": "x.js"}, ("x.js",))
    return nm


def test_map_follows_node_resolution_and_browser_conditions(node_modules):
    m = build_import_map(node_modules, roots=("app",), prefix="/v/")
    assert m["imports"] == {
        "app": "/v/app/esm/index.js",
        "@x/lib": "/v/@x/lib/browser.js",          # browser beats import; node is not ours
        "@x/lib/sub": "/v/@x/lib/sub.js",          # first usable alternative of an array
        "old": "/v/old/v1.js",                     # app's own copy
    }
    # Only inside @x/lib does `old` mean the nested copy.
    assert m["scopes"] == {"/v/@x/lib/": {"old": "/v/@x/lib/node_modules/old/v2.mjs"}}
    assert {p.name for p in allowed_dirs(node_modules, roots=("app",))} == {"app", "lib", "old"}


def test_missing_root_says_run_setup(node_modules):
    with pytest.raises(ImportMapError, match="make setup"):
        build_import_map(node_modules, roots=("viem",))


@pytest.mark.parametrize("target, want", [
    ("./a.js", "./a.js"),
    ({"require": "./a.cjs"}, None),
    ({"import": {"browser": "./b.js", "default": "./d.js"}}, "./b.js"),
    ([{"node": "./n.js"}, "./fallback.js"], "./fallback.js"),
])
def test_resolve_target(target, want):
    assert resolve_target(target) == want
