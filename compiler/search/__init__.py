"""wisp search: a joint compression search priced by the NPU cost model (docs/search.md).

from compiler.search import search
result = search("digits-vit", target="spatten", trials=50, study_dir="out/study")
result.front, result.best["pipeline"], result.study     # the Optuna study
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compiler.search.study import SearchResult


def search(model: str, **options: Any) -> SearchResult:
    """`compiler.search.study.search` (imported on call: Optuna loads only when a search runs)."""
    from compiler.search.study import search as run

    return run(model, **options)
