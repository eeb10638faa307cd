"""Import rules import-linter cannot state (run by `make lint`, next to `lint-imports`).

1. No import cycle inside `edgellm_sdk` or the ROS package `edgellm_ros` (type-checking imports count).
2. No private name crosses a module: `from x import _name`, or `module._name` on an imported module.
Exit status 1 lists every violation as path:line.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"edgellm_sdk": ROOT, "edgellm_ros": ROOT / "ros2_pkg" / "edgellm_ros"}


def cycles(package: str) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph = grimp.build_graph(package)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def private_imports(file: Path) -> list[str]:
    path = file.relative_to(ROOT)
    tree = ast.parse(file.read_text(encoding="utf-8"), str(path))
    modules: set[str] = set()  # names bound by `import x` / `from pkg import module`
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    problems.append(
                        f"{path}:{node.lineno}: imports the private {alias.name} from "
                        f"{'.' * node.level}{node.module or ''}"
                    )
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            problems.append(f"{path}:{node.lineno}: uses the private {node.value.id}.{node.attr}")
    return problems


def main() -> int:
    problems = []
    for package, parent in PACKAGES.items():
        sys.path.insert(0, str(parent))
        for component in cycles(package):
            problems.append(f"import cycle: {' <-> '.join(component)}")
        for path in sorted((parent / package).rglob("*.py")):
            problems += private_imports(path)
    for line in problems:
        print(line)
    print(f"check_imports: {len(problems)} problem(s) in {', '.join(PACKAGES)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
