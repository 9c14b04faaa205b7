"""vLLM Desk's Qt shell: windows, preferences, tray. Thin: it subscribes to the engine."""
