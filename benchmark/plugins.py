"""User plugins: a researcher's own method, attack, metric, explainer, dataset, model or artefact, without forking.

A plugin is a Python file that registers entries with the package's own decorators and registries
(`@register_method`, `@register_attack`, `register_metric`, `EXPLAINERS.register`, `ARTEFACTS.add`, ...). It is loaded
with `--plugins FILE[,FILE]` on `benchmark.run`, `benchmark.render` and `./reproduce.sh`, and every
installed package's entry points in the group `egat_bench.plugins` are loaded too. Each entry
remembers its plugin and the SHA-256 of the plugin's content, which enters the keys of every job
that uses the entry: editing a plugin never reuses results of its older version.

A plugin that fails to import, registers a name that exists, breaks a registry's contract or
registers nothing is a UserError naming the file (the CLIs: one line `error: ...`, exit 2), and
leaves no entry behind. Loading the same file twice is a no-op.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path

from benchmark import registry
from benchmark.registry import Origin, UserError

ENTRY_POINT_GROUP = "egat_bench.plugins"
#: the package's own registrations, imported before any plugin so that none of them is taken for the plugin's
BUILTIN_MODULES = ("benchmark.config", "benchmark.data", "benchmark.models", "benchmark.explain", "methods", "attacks",
                   "benchmark.metrics", "benchmark.launchers", "benchmark.tables", "benchmark.figures",
                   "benchmark.claims")
#: source -> origin of every plugin loaded in this process
_LOADED: dict[str, Origin] = {}


def _register_from(origin: Origin, load: Callable[[], object]) -> None:
    """Run `load` with `origin` as the registering plugin; on any failure remove what it registered."""
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    before = sum(len(r) for r in registry._REGISTRIES)
    registry._loading.append(origin)
    try:
        load()
        if sum(len(r) for r in registry._REGISTRIES) == before:
            raise UserError("it registers nothing (expected a method, attack, metric, explainer, dataset, model or "
                            "artefact)")
    except BaseException as err:
        for reg in registry._REGISTRIES:
            reg.forget(origin)
        if isinstance(err, KeyboardInterrupt | SystemExit):
            raise
        reason = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
        raise UserError(f"plugin {origin.source}: {reason}") from None
    finally:
        registry._loading.pop()
    _LOADED[origin.source] = origin


def load_file(path: str | Path) -> Origin:
    """Import one plugin file (once per process) and return its origin."""
    file = Path(path).expanduser().resolve()
    if not file.is_file() or file.suffix != ".py":
        raise UserError(f"plugin {path}: no such Python file")
    data = file.read_bytes()
    origin = Origin(str(file), hashlib.sha256(data).hexdigest())
    known = _LOADED.get(origin.source)
    if known is not None:
        if known != origin:
            raise UserError(f"plugin {path} changed since this process loaded it; run again")
        return known
    module_name = "egat_bench_plugin_" + re.sub(r"\W", "_", file.stem) + "_" + origin.digest[:12]

    def load() -> None:
        spec = importlib.util.spec_from_file_location(module_name, file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise

    _register_from(origin, load)
    return origin


def _entry_points() -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_entry_point(entry: metadata.EntryPoint) -> Origin:
    """Load one installed plugin; its digest covers its distribution's name and version and its module file."""
    source = f"entry point {entry.name} ({entry.value})"
    if source in _LOADED:
        return _LOADED[source]
    module = entry.module
    spec = importlib.util.find_spec(module)
    content = Path(spec.origin).read_bytes() if spec and spec.origin and Path(spec.origin).is_file() else b""
    dist = f"{entry.dist.name}=={entry.dist.version}" if entry.dist else ""
    origin = Origin(source, hashlib.sha256(dist.encode() + b"\0" + content).hexdigest())
    _register_from(origin, entry.load)
    return origin


def load_plugins(files: str | Iterable[str] = ()) -> list[Origin]:
    """Load the plugin files (a comma list or an iterable of paths) and the installed entry points;
    returns their origins (empty: nothing but the package's own entries)."""
    paths = [p.strip() for p in files.split(",")] if isinstance(files, str) else list(files)
    origins = [load_entry_point(entry) for entry in _entry_points()]
    return origins + [load_file(path) for path in paths if path]


def digests(entries: Iterable[tuple[registry.Registry, str | None]]) -> dict[str, str]:
    """`{"<kind>:<name>": digest}` of the (registry, name) entries that came from plugins (for job keys)."""
    found = {}
    for reg, name in entries:
        origin = reg.origin(name) if name is not None else None
        if origin is not None:
            found[f"{reg.kind}:{name}"] = origin.digest
    return found
