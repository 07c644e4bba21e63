"""Model backends behind one protocol (base.LLM) and the bundled GGUF models."""
