"""Model adapters (embedder, LLM), their sources and their one-time conversion to OpenVINO IR."""
