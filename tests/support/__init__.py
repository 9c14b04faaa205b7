"""Helpers for the test suite (stand-in server, fake keyring, vLLM fixtures). Never imported by the app."""
