"""Run the commands of README.md (and docs/*.md) as written, as a new user would, in a scratch directory.

    python scripts/run_readme.py                  # README.md
    python scripts/run_readme.py docs/depgraph.md README.md
    python scripts/run_readme.py --list           # show what would run, and what is skipped and why

Every ```sh block line (a command, with its `&&` chains) and every ```python block is run in order in one
scratch directory (with `tests/`, `examples/`, `benchmarks/` and `scripts/` linked in, as in a clone), with the `wisp`/`wisp-opt` of
this Python. Steps that set up an environment (venv, pip) and commands on files the reader brings
(`bert.onnx`) are skipped, with the reason listed. A block whose fence is preceded by the line
`<!-- not run: REASON -->` (an excerpt of the source, a fragment with names the reader supplies) is
listed as skipped with that reason. Exit 1 on the first failure, naming the file and line.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Commands not run: (pattern, reason).
SKIP = (
    (r"^python3? -m venv|^\. \.venv/bin/activate|^pip install", "environment setup"),
    (r"^python -m pytest", "the test suite (run it separately)"),
    (r"\b(bert|deit|gpt2)\.onnx\b", "a file the reader exports (scripts/export_onnx_models.py)"),
    (r"\| dot -T", "needs Graphviz's dot"),
)


@dataclass(frozen=True)
class Step:
    file: str
    line: int
    kind: str  # "sh" | "python" | "skip"
    text: str


def steps(path: Path) -> list[Step]:
    """The runnable steps of one markdown file, in order."""
    out: list[Step] = []
    lines = path.read_text().splitlines()
    name = str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    i = 0
    while i < len(lines):
        m = re.match(r"^```(sh|python)\s*$", lines[i])
        if not m:
            i += 1
            continue
        kind, start = m.group(1), i + 1
        before = next((x.strip() for x in reversed(lines[:i]) if x.strip()), "")
        note = re.fullmatch(r"<!-- not run: (.+) -->", before)
        i += 1
        block: list[str] = []
        while i < len(lines) and not lines[i].startswith("```"):
            block.append(lines[i])
            i += 1
        if note:
            out.append(Step(name, start + 1, "skip", note.group(1)))
            continue
        if kind == "python":
            out.append(Step(name, start + 1, kind, "\n".join(block)))
            continue
        pending: tuple[int, str] | None = None  # a command continued with a trailing backslash
        for k, raw in enumerate(block):
            cmd = raw.split("  #")[0].strip() if not raw.lstrip().startswith("#") else ""
            if pending is not None:
                cmd = f"{pending[1]} {cmd}".strip()
            first = pending[0] if pending is not None else start + 1 + k
            if cmd.endswith("\\"):
                pending = (first, cmd[:-1].rstrip())
                continue
            pending = None
            if cmd:
                out.append(Step(name, first, kind, cmd))
    return out


def plan(step: Step) -> tuple[str, list[str]]:
    """(what to run, [skip reasons]): `&&` parts matching SKIP are dropped."""
    if step.kind == "skip":
        return "", [step.text]
    if step.kind == "python":
        return step.text, []
    keep, skipped = [], []
    for part in (p.strip() for p in step.text.split("&&")):
        reason = next((r for pat, r in SKIP if re.search(pat, part)), None)
        (skipped if reason else keep).append(reason or part)
    return " && ".join(keep), skipped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("files", nargs="*", default=["README.md"])
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    todo = [s for f in args.files for s in steps(ROOT / f)]
    bindir = Path(sys.executable).parent
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bindir), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="wisp-readme-") as tmp:
        for name in ("tests", "examples", "benchmarks", "scripts"):
            os.symlink(ROOT / name, Path(tmp) / name)
        for step in todo:
            run, skipped = plan(step)
            where = f"{step.file}:{step.line}"
            for reason in skipped:
                print(f"{where}: skipped part ({reason})", file=sys.stderr)
            if not run:
                continue
            print(f"{where}: {run.splitlines()[0][:100]}", file=sys.stderr, flush=True)
            if args.list:
                continue
            cmd = ["bash", "-c", run] if step.kind == "sh" else [sys.executable, "-c", run]
            proc = subprocess.run(
                cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=1800
            )
            if proc.returncode != 0:
                print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
                print(f"{where}: FAILED (exit {proc.returncode}): {shlex.quote(run)}")
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
