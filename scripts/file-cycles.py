#!/usr/bin/env python3
"""Reports import cycles between the source files of each crate (issue 19).

For every crate under crates/, each file under src/ is a node; a file A depends on a file B when A
names an item of B through a path: a `use` tree or an inline path starting with `crate::`,
`super::`, `self::` or a child module's name. Paths are resolved to the deepest module that is a
file, and through `pub use` re-exports (so `crate::Error` re-exported by lib.rs counts as a
dependency on the file that defines `Error`, not on lib.rs). `mod x;` declarations are not
dependencies. Strongly connected components of more than one file are printed; the exit status is 1
when there is at least one.

    python3 scripts/file-cycles.py            # all crates
    python3 scripts/file-cycles.py -v         # also every file's dependencies
    python3 scripts/file-cycles.py crates/medu1-eval
"""
import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(src: str) -> str:
    """Blanks comments, string and char literals (keeps newlines and braces outside them)."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif (m := re.match(r'b?r(#*)"', src[i:])) and (i == 0 or not re.match(r"\w", src[i - 1])):
            end = '"' + m.group(1)
            j = src.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", src[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\x..|\\.|[^\\'])'", src[i:])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree: str, prefix=(), with_names=False):
    """`a::{b, c::{d, e as f}, self}` -> [(a,b), (a,c,d), (a,c,e), (a,)]."""
    tree = tree.strip()
    paths = []
    # split off the leading path
    depth, brace = 0, -1
    for k, ch in enumerate(tree):
        if ch == "{" and depth == 0:
            brace = k
            break
    if brace < 0:
        alias = re.search(r"\s+as\s+(\w+)$", tree)
        segs = [s.strip() for s in re.sub(r"\s+as\s+\w+$", "", tree).split("::") if s.strip()]
        segs = [s for s in segs if s != "*"]
        if segs and segs[-1] == "self":
            segs = segs[:-1]
        path = tuple(prefix) + tuple(segs)
        if with_names:
            return [(path, alias.group(1) if alias else (path[-1] if path else None))]
        return [path]
    head = [s.strip() for s in tree[:brace].split("::") if s.strip()]
    inner = tree[brace + 1 : tree.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in parts:
        if p.strip():
            paths += expand_use(p, tuple(prefix) + tuple(head), with_names)
    return paths


class Crate:
    def __init__(self, root: Path):
        self.root = root
        self.files = {}  # module path tuple -> Path
        src = root / "src"
        for f in sorted(src.rglob("*.rs")):
            rel = f.relative_to(src).with_suffix("")
            parts = list(rel.parts)
            if parts in (["lib"], ["main"]):
                parts = []
            elif parts[-1] == "mod":
                parts = parts[:-1]
            elif len(parts) == 1 and (src / "lib.rs").exists() and (src / "main.rs").exists():
                pass
            self.files[tuple(parts)] = f
        self.text = {m: strip(f.read_text()) for m, f in self.files.items()}
        self.reexports = {m: self._reexports(m) for m in self.files}

    def _uses(self, mod):
        """(inline module path inside the file, use-tree text, is_pub) for each `use`."""
        text = self.text[mod]
        out = []
        for m in re.finditer(r"(\bpub(?:\s*\([^)]*\))?\s+)?\buse\s+([^;]*);", text):
            out.append((self._inline(mod, m.start()), m.group(2), bool(m.group(1))))
        return out

    def _inline(self, mod, pos):
        """Inline `mod x { ... }` nesting at byte `pos` of the file of `mod`."""
        text = self.text[mod]
        stack, depth = [], 0
        for m in re.finditer(r"\bmod\s+(" + IDENT + r")\s*\{|\{|\}", text[:pos]):
            if m.group(1):
                depth += 1
                stack.append((m.group(1), depth))
            elif m.group(0) == "{":
                depth += 1
            else:
                if stack and stack[-1][1] == depth:
                    stack.pop()
                depth -= 1
        return tuple(name for name, _ in stack)

    def _reexports(self, mod):
        out = {}
        for inline, tree, is_pub in self._uses(mod):
            if not is_pub or inline:
                continue
            for path, name in expand_use(tree, with_names=True):
                if path and name:
                    out.setdefault(name, []).append(path)
        return out

    def absolute(self, mod, inline, path):
        """Turns a path as written in the file of `mod` (inside `inline`) into an absolute one."""
        here = list(mod) + list(inline)
        if not path:
            return None
        if path[0] == "crate":
            return list(path[1:])
        if path[0] in ("super", "self"):
            cur = list(here)
            i = 0
            while i < len(path) and path[i] in ("super", "self"):
                if path[i] == "super":
                    if not cur:
                        return None
                    cur.pop()
                i += 1
            return cur + list(path[i:])
        # a child module of the current module (2018 uniform paths), or of the file's module
        if tuple(here) + (path[0],) in self.files:
            return here + list(path)
        if not inline and tuple(mod) + (path[0],) in self.files:
            return list(mod) + list(path)
        return None

    def resolve(self, path, seen=0):
        """The file that defines what an absolute path names."""
        if path is None or seen > 8:
            return None
        k = len(path)
        while k > 0 and tuple(path[:k]) not in self.files:
            k -= 1
        mod = tuple(path[:k])
        rest = path[k:]
        if rest:
            name = rest[0]
            for target in self.reexports.get(mod, {}).get(name, []):
                abs_ = self.absolute(mod, (), target)
                if abs_ is None:
                    return None  # re-exported from another crate
                got = self.resolve(abs_ + list(rest[1:]), seen + 1)
                if got is not None:
                    return got
        return mod

    def deps(self):
        graph = {m: set() for m in self.files}
        for mod in self.files:
            text = self.text[mod]
            paths = []
            for inline, tree, _ in self._uses(mod):
                paths += [(inline, p) for p in expand_use(tree)]
            # inline paths outside `use` statements
            no_use = re.sub(r"\buse\s+[^;]*;", lambda m: " " * len(m.group(0)), text)
            for m in re.finditer(r"(?<![\w:])(" + IDENT + r"(?:\s*::\s*" + IDENT + r")+)", no_use):
                segs = tuple(s.strip() for s in m.group(1).split("::"))
                paths.append((self._inline(mod, m.start()), segs))
            for inline, p in paths:
                target = self.resolve(self.absolute(mod, inline, p))
                if target is not None and target != mod:
                    graph[mod].add(target)
        return graph

    def name(self, mod):
        return str(self.files[mod].relative_to(self.root / "src"))


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    verbose = "-v" in sys.argv
    repo = Path(__file__).resolve().parent.parent
    roots = [Path(a) for a in args] or sorted(p.parent for p in (repo / "crates").glob("*/Cargo.toml"))
    cycles = 0
    for root in roots:
        crate = Crate(root)
        graph = crate.deps()
        if verbose:
            for m in sorted(graph):
                print(f"{root.name}/{crate.name(m)} -> {', '.join(sorted(crate.name(t) for t in graph[m])) or '-'}")
        for comp in sccs(graph):
            if len(comp) > 1:
                cycles += 1
                names = sorted(crate.name(m) for m in comp)
                print(f"{root.name}: cycle between {len(names)} files: {', '.join(names)}")
                comp_set = set(comp)
                for m in sorted(comp):
                    inside = sorted(crate.name(t) for t in graph[m] if t in comp_set)
                    print(f"    {crate.name(m)} -> {', '.join(inside)}")
    print(f"{cycles} file-level import cycle(s) in {len(roots)} crate(s)")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
