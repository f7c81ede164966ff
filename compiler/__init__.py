"""wisp: compress transformers and compile them for a modeled NPU."""
