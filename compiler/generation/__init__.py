"""Text generation with a GPT-2 family model: prefill and decode programs with a KV cache
(docs/generation.md)."""
