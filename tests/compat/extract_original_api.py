#!/usr/bin/env python3
"""Extract the public API of the original criteo ``cluster-pack`` into ``original_api.json``.

The original modules import skein, pyspark, pex, fire and setuptools at module level
and run code at import time (``_get_tmp_dir()`` creates a directory, ``settings`` reads
environment variables and probes for ``uv``), so nothing here imports them: every
module is parsed with :mod:`ast`.

What is recorded, per module and per public (not ``_``-prefixed) name:

* functions: every parameter in order with its kind (``POSITIONAL_OR_KEYWORD``,
  ``KEYWORD_ONLY``, ...) and its default, classified as ``literal`` (``None``, bools,
  numbers, strings), ``mutable_literal`` (``{}``, ``[]``: satisfied by ``None`` in our
  package) or ``computed`` (evaluated at import, e.g. ``_get_tmp_dir()``, ``os.getcwd()``,
  ``sys.executable``: satisfied by any default);
* classes: bases and public methods (``self``/``cls`` dropped); ``NamedTuple`` classes
  with their fields in order; ``Enum`` classes with their members and values;
* module-level names: literal constants with their value (f-strings and concatenations
  of earlier constants are evaluated), instances (``PEX_PACKER = PexPacker()``), type
  aliases, values computed at import, and whether a ``global`` statement rewrites them
  at run time (the ``settings`` knobs);
* re-exports: names a package ``__init__`` imports from ``cluster_pack`` (for example
  ``cluster_pack.yarn_launcher``) and ``sys.modules[...] = module`` aliases;
* for the reviewer only: ``imported_names_ignored`` (third-party and stdlib names that
  are merely imported, or derived from such an import like ``logger = logging.getLogger``),
  ``internal_imports`` (``cluster_pack`` modules imported by a non-package module),
  ``env_vars`` (``C_PACK_*``/``CRITEO_ENV``/``PEX``/``VIRTUAL_ENV`` strings used) and
  ``import_time_calls``.

Usage::

    # the last release, from the wheel (or an unpacked directory holding cluster_pack/)
    python tests/compat/extract_original_api.py /tmp/dl/cluster_pack-0.3.19-py3-none-any.whl \\
        --label 0.3.19

    # master
    python tests/compat/extract_original_api.py /tmp/master_src --label master \\
        --files-json /tmp/master_src/files.json

Each run replaces only its own ``--label`` section of the JSON file and keeps the others.

How the ``master`` section was produced
--------------------------------------
There is no release of master and the GitHub repository could not be cloned (no network
but package registries). The files were read with the search tool's ``read_file`` on
``criteo/cluster-pack``. That index stores a union of crawled file versions and
returns "one stored version, not necessarily the newest" per path, so the newest
reachable version of each file was identified by content (the one importing
``cluster_pack.settings``) and by commit: ``packaging.py``, ``uploader.py``,
``skein/skein_launcher.py`` and ``skein/skein_config_builder.py`` at commit
``805497acc28e357d9ab86c879e4457e9e8126aa6``; ``settings.py`` at
``0e8a6e0cac00ed586ef2b267fb85677b66f7c455``; ``__init__.py``, ``filesystem.py``,
``dependencies.py`` and ``spark/spark_config_builder.py`` by index id (commit not shown).
The module-level definitions of those files (imports, signatures, classes, constants,
``sys.modules`` lines, import-time calls; bodies dropped) were transcribed into a
scratch directory outside the repository and run through this same script. That scratch
copy is not committed (it is the original's code); only the JSON it produced is. The
exact provenance of every file, and what could not be read, is in
``sources.master.files`` / ``master.unreadable`` of the JSON.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional

# Modules of the contract. ``reference_only`` modules are recorded but not checked by
# test_original_api.py: _execute_fun is the remote entry point run inside the PEX built
# from *our* package, and dependencies is an internal helper module of master.
MODULES: Dict[str, Dict[str, Any]] = {
    "cluster_pack": {"file": "cluster_pack/__init__.py"},
    "cluster_pack.packaging": {"file": "cluster_pack/packaging.py"},
    "cluster_pack.uploader": {"file": "cluster_pack/uploader.py"},
    "cluster_pack.settings": {"file": "cluster_pack/settings.py"},
    "cluster_pack.filesystem": {"file": "cluster_pack/filesystem.py"},
    "cluster_pack.process": {"file": "cluster_pack/process.py"},
    "cluster_pack.skein": {"file": "cluster_pack/skein/__init__.py"},
    "cluster_pack.skein.skein_config_builder": {
        "file": "cluster_pack/skein/skein_config_builder.py"
    },
    "cluster_pack.skein.skein_launcher": {"file": "cluster_pack/skein/skein_launcher.py"},
    "cluster_pack.skein._execute_fun": {
        "file": "cluster_pack/skein/_execute_fun.py",
        "reference_only": True,
    },
    "cluster_pack.spark.spark_config_builder": {
        "file": "cluster_pack/spark/spark_config_builder.py"
    },
    "cluster_pack.dependencies": {
        "file": "cluster_pack/dependencies.py",
        "reference_only": True,
    },
}

PARAM_KINDS = (
    "POSITIONAL_ONLY",
    "POSITIONAL_OR_KEYWORD",
    "VAR_POSITIONAL",
    "KEYWORD_ONLY",
    "VAR_KEYWORD",
)

ENV_VAR_RE = re.compile(r"^(C_PACK_[A-Z0-9_]+|CLUSTER_PACK_[A-Z0-9_]+|CRITEO_ENV|PEX|VIRTUAL_ENV|KRB5CCNAME)$")

STDLIB = set(getattr(sys, "stdlib_module_names", ())) | {"typing"}


def _jsonable(value: Any) -> Any:
    """The value as JSON if it round-trips exactly, else None."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        items = [_jsonable(v) for v in value]
        return items if all(i is not None or v is None for i, v in zip(items, value)) else None
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _jsonable(v) for k, v in value.items()}
    return None


def _literal(node: ast.AST, constants: Dict[str, Any]) -> Any:
    """Evaluate literals, f-strings and ``+`` of known module constants; raise ValueError."""
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            elif isinstance(v, ast.FormattedValue) and v.format_spec is None and v.conversion == -1:
                parts.append(str(_literal(v.value, constants)))
            else:
                raise ValueError("unsupported f-string")
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left, constants) + _literal(node.right, constants)
    raise ValueError(f"not a literal: {ast.unparse(node)}")


def _default(node: ast.AST) -> Dict[str, Any]:
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return {"category": "computed", "repr": ast.unparse(node)}
    category = "mutable_literal" if isinstance(value, (dict, list, set)) else "literal"
    out: Dict[str, Any] = {"category": category, "repr": repr(value)}
    js = _jsonable(value)
    if js is not None or value is None:
        out["value"] = js
    return out


def _params(args: ast.arguments) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []

    def add(arg: ast.arg, kind: str, default: Optional[ast.AST]) -> None:
        entry: Dict[str, Any] = {"name": arg.arg, "kind": kind}
        entry["default"] = _default(default) if default is not None else None
        if arg.annotation is not None:
            entry["annotation"] = ast.unparse(arg.annotation)
        out.append(entry)

    positional = list(args.posonlyargs) + list(args.args)
    defaults: List[Optional[ast.AST]] = [None] * (len(positional) - len(args.defaults)) + list(
        args.defaults
    )
    for i, arg in enumerate(positional):
        kind = "POSITIONAL_ONLY" if i < len(args.posonlyargs) else "POSITIONAL_OR_KEYWORD"
        add(arg, kind, defaults[i])
    if args.vararg is not None:
        add(args.vararg, "VAR_POSITIONAL", None)
    for arg, d in zip(args.kwonlyargs, args.kw_defaults):
        add(arg, "KEYWORD_ONLY", d)
    if args.kwarg is not None:
        add(args.kwarg, "VAR_KEYWORD", None)
    return out


def _function(node: ast.AST, method: bool = False) -> Dict[str, Any]:
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    decorators = [ast.unparse(d) for d in node.decorator_list]
    entry: Dict[str, Any] = {"kind": "function", "params": _params(node.args)}
    if method:
        if "staticmethod" in decorators:
            entry["method_type"] = "staticmethod"
        else:
            entry["method_type"] = "classmethod" if "classmethod" in decorators else "instance"
            entry["params"] = entry["params"][1:]  # drop self / cls
        entry["kind"] = "method"
    if decorators:
        entry["decorators"] = decorators
    if node.returns is not None:
        entry["returns"] = ast.unparse(node.returns)
    if isinstance(node, ast.AsyncFunctionDef):
        entry["async"] = True
    return entry


def _class(node: ast.ClassDef, constants: Dict[str, Any]) -> Dict[str, Any]:
    bases = [ast.unparse(b) for b in node.bases]
    methods: Dict[str, Any] = {}
    for item in node.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and not item.name.startswith("_"):
            methods[item.name] = _function(item, method=True)
    if any(b.split(".")[-1] == "NamedTuple" for b in bases):
        fields = []
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                f: Dict[str, Any] = {"name": item.target.id, "annotation": ast.unparse(item.annotation)}
                if item.value is not None:
                    f["default"] = _default(item.value)
                fields.append(f)
        entry: Dict[str, Any] = {"kind": "namedtuple", "fields": fields}
    elif any(b.split(".")[-1] in ("Enum", "IntEnum", "StrEnum") for b in bases):
        members: Dict[str, Any] = {}
        for item in node.body:
            if isinstance(item, ast.Assign) and len(item.targets) == 1 and isinstance(item.targets[0], ast.Name):
                name = item.targets[0].id
                if name.startswith("_"):
                    continue
                try:
                    members[name] = _jsonable(_literal(item.value, constants))
                except ValueError:
                    members[name] = {"computed": ast.unparse(item.value)}
        entry = {"kind": "enum", "members": members}
    else:
        entry = {"kind": "class"}
    entry["bases"] = bases
    if methods:
        entry["methods"] = methods
    return entry


def _root_name(node: ast.AST) -> Optional[str]:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _mentions_local(node: ast.AST, local: set) -> bool:
    return any(isinstance(n, ast.Name) and n.id in local for n in ast.walk(node))


class ModuleExtractor:
    def __init__(self, modname: str, source: str, is_package: bool, known_modules: set):
        self.modname = modname
        self.tree = ast.parse(source)
        self.is_package = is_package
        self.known_modules = known_modules
        self.names: Dict[str, Any] = {}
        self.ignored: Dict[str, str] = {}
        self.internal: Dict[str, str] = {}
        self.sys_modules: Dict[str, str] = {}
        self.env_vars: List[str] = []
        self.calls: List[str] = []
        self.requires: List[str] = []
        self.constants: Dict[str, Any] = {}
        self.imported: Dict[str, str] = {}  # local name -> "thirdparty"/"cluster_pack"
        self.globals_rewritten = {
            name
            for n in ast.walk(self.tree)
            if isinstance(n, ast.Global)
            for name in n.names
        }
        self.local_defs = {
            n.name
            for n in self.tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        }
        self.local_classes = {n.name for n in self.tree.body if isinstance(n, ast.ClassDef)}

    # -- imports -----------------------------------------------------------------
    def _resolve_from(self, node: ast.ImportFrom) -> str:
        if node.level == 0:
            return node.module or ""
        base = self.modname.split(".")
        if not self.is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        return ".".join(base + ([node.module] if node.module else []))

    def _import(self, node: ast.AST, conditional: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                top = alias.name.split(".")[0]
                self._note_requirement(top)
                if top == "cluster_pack":
                    self._bind_internal(bound, alias.name, is_module=True)
                else:
                    self.imported[bound] = "external"
                    if not bound.startswith("_"):
                        self.ignored[bound] = f"import {alias.name}" + (
                            f" as {alias.asname}" if alias.asname else ""
                        )
            return
        assert isinstance(node, ast.ImportFrom)
        module = self._resolve_from(node)
        top = module.split(".")[0]
        self._note_requirement(top)
        for alias in node.names:
            bound = alias.asname or alias.name
            if top == "cluster_pack":
                target = f"{module}.{alias.name}"
                self._bind_internal(bound, target, is_module=target in self.known_modules)
            else:
                self.imported[bound] = "external"
                if not bound.startswith("_"):
                    self.ignored[bound] = f"from {module} import {alias.name}" + (
                        f" as {alias.asname}" if alias.asname else ""
                    ) + (" (conditional)" if conditional else "")

    def _note_requirement(self, top: str) -> None:
        if top and top not in STDLIB and top != "cluster_pack" and top not in self.requires:
            self.requires.append(top)

    def _bind_internal(self, bound: str, target: str, is_module: bool) -> None:
        self.imported[bound] = "cluster_pack"
        if bound.startswith("_"):
            return
        if self.is_package:
            # a package __init__ re-exports what it imports: that is public API
            self.names[bound] = {
                "kind": "module_reexport" if is_module else "reexport",
                "target": target,
            }
            # a later plain ``import x`` must not shadow it in ignored
            self.ignored.pop(bound, None)
        else:
            self.internal[bound] = target

    # -- assignments -------------------------------------------------------------
    def _assign(self, target: str, value: Optional[ast.AST], annotation: Optional[ast.AST], conditional: bool) -> None:
        if value is None:
            return
        public = not target.startswith("_")
        try:
            lit = _literal(value, self.constants)
            self.constants[target] = lit
            entry: Dict[str, Any] = {"kind": "constant", "value_repr": repr(lit)}
            js = _jsonable(lit)
            if js is not None or lit is None:
                entry["value"] = js
            if not isinstance(value, ast.Constant):
                entry["source"] = ast.unparse(value)
        except ValueError:
            self.constants.pop(target, None)
            entry = self._non_literal(target, value)
            if entry is None:
                return
        if annotation is not None:
            entry["annotation"] = ast.unparse(annotation)
        if target in self.globals_rewritten:
            entry["mutable_global"] = True
        if conditional:
            entry["conditional"] = True
        if not public:
            return
        previous = self.names.get(target)
        if previous is not None and previous.get("kind") == "constant" and entry.get("kind") == "constant":
            entry["reassigned"] = True
        elif previous is not None and previous.get("kind") != entry.get("kind"):
            # e.g. ``UV_AVAILABLE: bool = False`` then ``UV_AVAILABLE = _detect_uv()``
            entry["initial"] = previous
        self.names[target] = entry

    def _non_literal(self, target: str, value: ast.AST) -> Optional[Dict[str, Any]]:
        src = ast.unparse(value)
        root = _root_name(value)
        if isinstance(value, ast.Subscript) and root in self.imported:
            return {"kind": "type_alias", "source": src}
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in self.local_classes:
            return {"kind": "instance", "class": value.func.id, "source": src}
        if root in self.imported and self.imported[root] == "external" and not _mentions_local(value, self.local_defs):
            if not target.startswith("_"):
                self.ignored[target] = f"{target} = {src} (derived from an imported name)"
            return None
        return {"kind": "computed", "source": src}

    # -- walk ----------------------------------------------------------------------
    def _sys_modules(self, node: ast.Assign) -> bool:
        t = node.targets[0] if len(node.targets) == 1 else None
        if (
            isinstance(t, ast.Subscript)
            and ast.unparse(t.value) == "sys.modules"
            and isinstance(t.slice, ast.Constant)
            and isinstance(value := node.value, ast.Name)
        ):
            target = self.names.get(value.id, {}).get("target") or self.internal.get(value.id) or value.id
            self.sys_modules[t.slice.value] = target
            return True
        return False

    def _walk(self, body: List[ast.stmt], conditional: bool = False) -> None:
        for node in body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                self._import(node, conditional)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not node.name.startswith("_"):
                    self.names[node.name] = _function(node)
            elif isinstance(node, ast.ClassDef):
                if not node.name.startswith("_"):
                    self.names[node.name] = _class(node, self.constants)
            elif isinstance(node, ast.Assign):
                if self._sys_modules(node):
                    continue
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self._assign(t.id, node.value, None, conditional)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                self._assign(node.target.id, node.value, node.annotation, conditional)
            elif isinstance(node, ast.Delete):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        self.names.pop(t.id, None)
                        self.ignored.pop(t.id, None)
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                self.calls.append(ast.unparse(node.value))
            elif isinstance(node, ast.If):
                if ast.unparse(node.test) == "__name__ == '__main__'":
                    self.calls.append("if __name__ == '__main__': " + "; ".join(ast.unparse(s) for s in node.body))
                    continue
                self._walk(node.body, True)
                self._walk(node.orelse, True)
            elif isinstance(node, ast.Try):
                self._walk(node.body, True)
                for h in node.handlers:
                    self._walk(h.body, True)
                self._walk(node.orelse, True)
                self._walk(node.finalbody, True)

    def extract(self) -> Dict[str, Any]:
        self._walk(self.tree.body)
        for n in ast.walk(self.tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and ENV_VAR_RE.match(n.value):
                if n.value not in self.env_vars:
                    self.env_vars.append(n.value)
        out: Dict[str, Any] = {"names": dict(sorted(self.names.items()))}
        out["imported_names_ignored"] = dict(sorted(self.ignored.items()))
        if self.internal:
            out["internal_imports"] = dict(sorted(self.internal.items()))
        if self.sys_modules:
            out["sys_modules_aliases"] = self.sys_modules
        out["requires"] = sorted(self.requires)
        if self.env_vars:
            out["env_vars"] = self.env_vars
        if self.calls:
            out["import_time_calls"] = self.calls
        return out


def _locate_root(source: Path, tmp: str) -> Path:
    """Directory that contains ``cluster_pack/``."""
    if source.is_file() and source.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(source) as z:
            z.extractall(tmp)
        return Path(tmp)
    if (source / "cluster_pack" / "__init__.py").exists():
        return source
    if (source / "__init__.py").exists() and source.name == "cluster_pack":
        return source.parent
    raise SystemExit(f"{source}: no cluster_pack/ package found")


def extract(root: Path) -> Dict[str, Any]:
    known_modules = set(MODULES)
    for p in (root / "cluster_pack").rglob("*.py"):
        rel = p.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        known_modules.add(".".join(parts))
    modules: Dict[str, Any] = {}
    missing: List[str] = []
    for modname, info in MODULES.items():
        path = root / info["file"]
        if not path.exists():
            missing.append(modname)
            continue
        ex = ModuleExtractor(
            modname, path.read_text(), path.name == "__init__.py", known_modules
        )
        entry = {"file": info["file"]}
        if info.get("reference_only"):
            entry["reference_only"] = True
        entry.update(ex.extract())
        modules[modname] = entry
    return {"modules": modules, "missing_modules": missing}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="wheel, or directory holding cluster_pack/")
    parser.add_argument("--label", required=True, help='section to write, e.g. "0.3.19" or "master"')
    parser.add_argument(
        "--json",
        type=Path,
        default=Path(__file__).with_name("original_api.json"),
        help="output file (other sections are kept)",
    )
    parser.add_argument(
        "--files-json",
        type=Path,
        help="JSON with provenance: {'files': {path: {...}}, 'unreadable': [...], 'notes': [...]}",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        root = _locate_root(args.source, tmp)
        section = extract(root)
        version = None
        dist_infos = list(root.glob("cluster_pack-*.dist-info"))
        if dist_infos:
            version = dist_infos[0].name[len("cluster_pack-"):-len(".dist-info")]

    provenance: Dict[str, Any] = {"source": str(args.source)}
    if version:
        provenance["version"] = version
    if args.files_json:
        extra = json.loads(args.files_json.read_text())
        provenance.update({k: v for k, v in extra.items() if k != "unreadable"})
        section["unreadable"] = extra.get("unreadable", [])

    data: Dict[str, Any] = {}
    if args.json.exists():
        data = json.loads(args.json.read_text())
    data["format"] = 1
    data["generated_by"] = "tests/compat/extract_original_api.py (see its docstring)"
    data.setdefault("sources", {})[args.label] = provenance
    data[args.label] = section
    ordered = {k: data[k] for k in ("format", "generated_by", "sources") if k in data}
    for k in sorted(k for k in data if k not in ordered):
        ordered[k] = data[k]
    args.json.write_text(json.dumps(ordered, indent=1, sort_keys=False) + "\n")
    n = sum(len(m["names"]) for m in section["modules"].values())
    print(f"{args.label}: {len(section['modules'])} modules, {n} public names -> {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
