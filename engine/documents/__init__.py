"""Chat with your documents: collections, converters, passages, the document store, embeddings, retrieval."""

import os

# Haystack decides at its import whether to send telemetry, and pipelines (retrieval.py) report every run:
# off before any module of this package can import it (the window sets the same in desktop/app.py).
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")
