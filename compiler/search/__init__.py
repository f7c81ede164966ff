"""wisp search: a joint compression search priced by the NPU cost model (docs/search.md)."""
