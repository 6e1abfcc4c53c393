"""The package's import graph: no cycles, no upward arrows (the library never imports the CLI,
the models never import file I/O). Read from the source with ast, so nothing is imported."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "maskflow_cli"
MODELS = {"maskflow_cli.tokenizer", "maskflow_cli.transformer", "maskflow_cli.embeddings", "maskflow_cli.schedules"}
FILE_IO = ("maskflow_cli.video_io", "maskflow_cli.weights", "maskflow_cli.weight_headers", "maskflow_cli.weight_sources", "maskflow_cli.partial_files",
           "maskflow_cli.clips", "maskflow_cli.token_files")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The package modules ``path`` imports (at any depth of its code), as dotted names."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m.startswith("maskflow_cli")}


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in files and m != name} for name, path in files.items()}


def _is_cli(module: str) -> bool:
    return module == "maskflow_cli.cli" or module.startswith("maskflow_cli.cli.")


def test_the_library_never_imports_the_cli():
    graph = _graph()
    library = {m: imports for m, imports in graph.items() if not _is_cli(m) and m != "maskflow_cli.__main__"}  # __main__: the entry point
    assert {m: sorted(filter(_is_cli, imports)) for m, imports in library.items() if any(map(_is_cli, imports))} == {}


def test_the_models_touch_no_files():
    graph = _graph()
    assert {m: sorted(i for i in graph[m] if i.startswith(FILE_IO)) for m in MODELS if any(i.startswith(FILE_IO) for i in graph[m])} == {}


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for target in sorted(graph[module]):
            if target.startswith(module + "."):  # a package importing its own submodules is not a cycle
                continue
            if state.get(target) == 1 and not module.startswith(target + "."):
                return path + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            assert visit(module, [module]) is None
