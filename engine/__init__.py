"""vLLM Desk's core: vLLM runtime and process supervision, chat over Haystack, storage, export, settings.

This package never imports Qt; the `desktop` package is a thin shell over it, and the `vllm-desk`
command line drives it directly.
"""

__version__ = "0.1.0"
APP_NAME = "vLLM Desk"
APP_ID = "vllm-desk"
