"""The package's shape: layers, no import circles, short modules, a stable public facade.

Every ``import`` in ``mindtf/`` (at module level or inside a function) is an edge of the module
graph. The rule (ARCHITECTURE.md): a module may import its own package and the layers below it,
never a layer above, never a sibling package on its own layer.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import mindtf

ROOT = Path(mindtf.__file__).resolve().parent

#: package (first component under mindtf) -> layer; higher layers may import lower ones
LAYERS = {
    "errors": 0, "version": 0, "fileio": 0, "compat": 0, "precision": 0,
    "runtime": 1, "config": 1, "metrics": 1, "plotting": 1, "progress": 1, "kernels": 1,
    "distributed": 1,
    "nn": 2, "weights": 2,
    "models": 3,
    "training": 4, "decoding": 4, "tokenizers": 4, "data": 4,
    "recipes": 5,
    "cli": 6,
    "__init__": 7, "__main__": 7,  # the facade and the entry point sit on top
}
MAX_LINES = 400

# the public names of mindtf 0.1 (before the package was layered): they must keep working
PUBLIC_0_1 = [
    "AdamW", "AdditiveAttention", "ByteLevelBPE", "CharTokenizer", "CheckpointError",
    "ConfigError", "FeedForward", "GPT", "GPTConfig", "InputError", "KVCache", "LMLossCell",
    "LayerNorm", "LearnedPositionalEmbedding", "MindtfError", "MultiHeadAttention", "Noam",
    "RMSNorm", "RotaryEmbedding", "RuntimeInfo", "Seq2SeqLossCell", "SinusoidalPositionalEncoding",
    "TrainConfig", "TrainStep", "Trainer", "Transformer", "TransformerConfig", "Vocab",
    "WarmupCosine", "WordTokenizer", "accuracy", "available_devices", "beam_search",
    "build_train_step", "causal_mask", "corpus_bleu", "cross_entropy", "generate",
    "greedy_decode", "load_model", "padding_mask", "perplexity", "save_model",
    "scaled_dot_product_attention", "setup",
]


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        yield ".".join(parts), path, is_pkg


MODULES = {name: (path, is_pkg) for name, path, is_pkg in _modules()}


def _imports(name: str, path: Path, is_pkg: bool):
    """(imported mindtf module, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mindtf":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve it
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "mindtf":
                continue
            for alias in node.names:  # `from mindtf.x import y`: y may be a module
                sub = f"{mod}.{alias.name}"
                yield (sub if sub in MODULES else mod), node.lineno


def _target(mod: str) -> str:
    """The longest known module prefix of ``mod``."""
    parts = mod.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    return ".".join(parts)


def _package(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


GRAPH = {name: sorted({_target(m) for m, _ in _imports(name, p, pkg)} - {name, ""})
         for name, (p, pkg) in MODULES.items()}


def test_every_package_has_a_layer():
    missing = sorted({_package(m) for m in MODULES} - set(LAYERS))
    assert not missing, f"add these packages to LAYERS (and ARCHITECTURE.md): {missing}"


def test_imports_follow_the_layers():
    bad = []
    for name, (path, is_pkg) in MODULES.items():
        src = _package(name)
        for mod, line in _imports(name, path, is_pkg):
            dst = _package(_target(mod))
            if dst == src or src in ("__init__", "__main__"):
                continue
            if LAYERS[dst] >= LAYERS[src]:
                bad.append(f"{path.relative_to(ROOT.parent)}:{line} imports {mod} "
                           f"({src}, layer {LAYERS[src]} -> {dst}, layer {LAYERS[dst]})")
    assert not bad, "imports against the dependency rule:\n" + "\n".join(bad)


def test_no_import_cycles():
    colour = {}
    cycles = []

    def visit(node, stack):
        colour[node] = 1
        stack.append(node)
        for nxt in GRAPH.get(node, ()):
            if colour.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif colour.get(nxt) is None:
                visit(nxt, stack)
        stack.pop()
        colour[node] = 2

    for node in sorted(GRAPH):
        # the facade imports everything lazily by design; cycles through it are not real
        if node != "mindtf" and colour.get(node) is None:
            visit(node, [])
    cycles = [c for c in cycles if " mindtf " not in f" {c} ".replace(" -> ", " ")]
    assert not cycles, "import cycles:\n" + "\n".join(sorted(set(cycles)))


def test_no_private_names_imported_across_modules():
    bad = []
    for _name, (path, _is_pkg) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mindtf"):
                for alias in node.names:
                    if alias.name.startswith("_") and alias.name != "__version__":
                        bad.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} imports "
                                   f"{node.module}.{alias.name}")
    assert not bad, "private names imported across modules:\n" + "\n".join(bad)


def test_modules_are_short():
    long = [f"{p.relative_to(ROOT.parent)}: {n} lines" for p, n in
            ((p, len(p.read_text(encoding="utf-8").splitlines())) for p, _ in MODULES.values())
            if n > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines (split them by idea):\n" + "\n".join(long)


@pytest.mark.parametrize("name", PUBLIC_0_1)
def test_public_names_still_import(name):
    assert name in mindtf.__all__
    assert getattr(mindtf, name) is not None


def test_every_module_imports():
    for name in MODULES:
        importlib.import_module(name)
