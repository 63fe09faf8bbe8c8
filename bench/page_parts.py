"""Parts of bench/RESULTS.md read from the outputs of single steps (make_results.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "results"

OOC_RUNS = {
    "ooc-kernel-paging.log": [],  # writes the files, then trains with paging left to Linux
    "ooc-trimmed.log": ["--trim", "1"],  # mapped pages released every second
    "ooc-from-disk.log": ["--trim", "1", "--cold"],  # page cache dropped before each epoch
}


def layers_table() -> list[str]:
    path = OUT / "threading_layers.json"
    if not path.exists():
        return ["(no threading_layers.json: run without --skip-layers)"]
    sys.path.insert(0, str(HERE))
    from threading_layers import table

    rounds = json.loads(path.read_text())["rounds"]
    return table(rounds) + ["", f"({len(rounds)} processes, the layers taking turns.)"]


def ooc_snippets() -> list[str]:
    out = []
    for log in OOC_RUNS:
        path = OUT / log
        if not path.exists():
            continue
        text = path.read_text()
        at = text.find("### Out of core")
        if at < 0:
            out += [f"({log}: no result)", "```", text[-2000:], "```", ""]
            continue
        keep = []
        for line in text[at:].splitlines():
            if line.startswith(("kept ", "rc=")):
                break
            keep.append(line)
        out += ["\n".join(keep).strip(), ""]
    return out or ["(no out-of-core logs: run without --skip-ooc)"]


def text_lines(path: Path, hint: str) -> list[str]:
    return path.read_text().splitlines() if path.exists() else [f"(no {path.name}: {hint})"]
