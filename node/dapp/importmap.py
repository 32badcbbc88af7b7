"""An import map for the dapp's npm dependencies, so the browser loads viem's ESM
build straight from node_modules: no bundler, no CDN.

    build_import_map(Path("node_modules"), roots=("viem",), prefix="/vendor/")
    # {"imports": {"viem": "/vendor/viem/_esm/index.js", ...},
    #  "scopes": {"/vendor/ox/": {"eventemitter3": "/vendor/ox/node_modules/eventemitter3/index.mjs"}}}

Packages are found the way Node finds them (the importer's own node_modules first,
then the top level) and each specifier is resolved through the package's `exports`
with the browser's conditions. `allowed_dirs()` lists the package folders the map
points into: the server serves files from those and nothing else.
"""
from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path

from node.errors import TrainchainError

# Conditions a browser loading ES modules satisfies, as bundlers use them.
BROWSER_CONDITIONS = ("browser", "import", "module", "default")


class ImportMapError(TrainchainError):
    """node_modules lacks a package the dapp needs."""


@dataclass
class Package:
    name: str
    dir: Path  # absolute folder of the package
    manifest: dict = field(repr=False)


def find_package(name: str, from_dir: Path, node_modules: Path) -> Path | None:
    """Node's lookup: <dir>/node_modules/<name> for from_dir and each parent, up to the project."""
    for here in [from_dir, *from_dir.parents]:
        if here.name != "node_modules" and (here / "node_modules" / name / "package.json").is_file():
            return here / "node_modules" / name
        if here == node_modules.parent:
            return None
    return None


def resolve_target(target: object) -> str | None:
    """One `exports` target under the browser conditions; None if nothing applies."""
    if isinstance(target, str):
        return target
    if isinstance(target, list):
        for item in target:
            resolved = resolve_target(item)
            if resolved is not None:
                return resolved
        return None
    if isinstance(target, dict):
        for condition, sub in target.items():  # key order is the priority order
            if condition in BROWSER_CONDITIONS:
                resolved = resolve_target(sub)
                if resolved is not None:
                    return resolved
    return None


def compute_entry_points(manifest: dict) -> dict[str, str]:
    """Subpath ("." or "./x") -> file relative to the package, for every exported subpath."""
    exports = manifest.get("exports")
    if exports is None:
        browser = manifest.get("browser")
        main = browser if isinstance(browser, str) else manifest.get("module") or manifest.get("main") or "index.js"
        # `main` may be written "x.js", "./x.js" or "x"; a browser needs the file itself.
        main = "./" + posixpath.normpath(main)
        return {".": main if posixpath.splitext(main)[1] else main + ".js"}
    if isinstance(exports, (str, list)) or not any(k.startswith(".") for k in exports):
        exports = {".": exports}
    entries = {}
    for subpath, target in exports.items():
        resolved = resolve_target(target)
        # Wildcard subpaths cannot be expressed exactly in an import map; none of
        # viem's dependencies use them.
        if resolved is None or "*" in subpath or not resolved.startswith("./"):
            continue
        entries[subpath] = resolved
    return entries


def collect_packages(node_modules: Path, roots: tuple[str, ...]) -> list[Package]:
    """The roots and everything they depend on (transitively), as installed."""
    node_modules = node_modules.resolve()
    seen: dict[Path, Package] = {}
    todo = []
    for root in roots:
        found = find_package(root, node_modules.parent, node_modules)
        if found is None:
            raise ImportMapError(f"dapp: {root} is not installed in {node_modules} (run `make setup`)")
        todo.append((root, found))
    while todo:
        name, pkg_dir = todo.pop()
        if pkg_dir in seen:
            continue
        manifest = json.loads((pkg_dir / "package.json").read_text())
        seen[pkg_dir] = Package(name, pkg_dir, manifest)
        for dep in manifest.get("dependencies", {}):
            dep_dir = find_package(dep, pkg_dir, node_modules)
            if dep_dir is not None:  # an optional dependency may be absent
                todo.append((dep, dep_dir))
    return sorted(seen.values(), key=lambda p: str(p.dir))


def build_import_map(node_modules: Path, roots: tuple[str, ...] = ("viem",), prefix: str = "/vendor/") -> dict:
    """The import map for `roots`; nested copies of a package get a scope of their own."""
    node_modules = node_modules.resolve()
    imports: dict[str, str] = {}
    scopes: dict[str, dict[str, str]] = {}
    for pkg in collect_packages(node_modules, roots):
        rel = pkg.dir.relative_to(node_modules).as_posix()
        mapping = {
            pkg.name if sub == "." else f"{pkg.name}/{sub[2:]}": f"{prefix}{rel}/{file[2:]}"
            for sub, file in compute_entry_points(pkg.manifest).items()
            if (pkg.dir / file).is_file()  # some packages export files they do not ship
        }
        if "/node_modules/" in rel:
            # A nested copy wins only inside the package that owns that node_modules.
            owner = rel.rsplit("/node_modules/", 1)[0]
            scopes.setdefault(f"{prefix}{owner}/", {}).update(mapping)
        else:
            imports.update(mapping)
    return {"imports": dict(sorted(imports.items())), "scopes": scopes}


def allowed_dirs(node_modules: Path, roots: tuple[str, ...] = ("viem",)) -> list[Path]:
    """Package folders the import map points into (the only ones the server exposes)."""
    return [p.dir for p in collect_packages(node_modules, roots)]
