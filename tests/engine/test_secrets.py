"""Secrets in the keychain only; no silent plaintext; session-only memory when no keychain works."""

from __future__ import annotations

import keyring
import pytest
from keyring.backends import fail

from engine.secrets import KeychainUnavailable, SecretStore, endpoint_key, profile_key
from tests.support.memory_keyring import MemoryKeyring


@pytest.fixture
def memory() -> MemoryKeyring:
    backend = MemoryKeyring()
    MemoryKeyring._store.clear()
    return backend


def test_set_get_delete_through_keyring(memory: MemoryKeyring) -> None:
    store = SecretStore(backend=memory)
    store.set(endpoint_key("lab"), "sk-lab-123")
    assert memory.get_password("vllm-desk", "endpoint:lab") == "sk-lab-123"
    assert store.get("endpoint:lab") == "sk-lab-123"
    assert not store.is_session_only("endpoint:lab")
    store.delete("endpoint:lab")
    assert store.get("endpoint:lab") is None
    store.delete("endpoint:lab")  # absent is fine


def test_default_backend_is_the_configured_one() -> None:
    # tests/conftest.py selects the memory backend through PYTHON_KEYRING_BACKEND, like a user would.
    store = SecretStore()
    assert isinstance(store.backend, MemoryKeyring)
    store.set("hf_token", "hf_abc")
    assert keyring.get_password("vllm-desk", "hf_token") == "hf_abc"


def test_rename_moves_the_secret(memory: MemoryKeyring) -> None:
    store = SecretStore(backend=memory)
    store.set(profile_key("old"), "k1")
    store.rename(profile_key("old"), profile_key("new"))
    assert store.get("profile:new") == "k1"
    assert memory.get_password("vllm-desk", "profile:old") is None


def test_no_keychain_says_so_and_offers_session_only() -> None:
    store = SecretStore(backend=fail.Keyring())
    assert not store.keychain_available
    with pytest.raises(KeychainUnavailable) as info:
        store.set("endpoint:x", "secret")
    assert info.value.fix is not None
    assert info.value.fix.action == "remember_for_session"
    assert "no keychain" in str(info.value)
    assert store.get("endpoint:x") is None  # nothing kept silently
    store.set("endpoint:x", "secret", session_only=True)
    assert store.get("endpoint:x") == "secret"
    assert store.is_session_only("endpoint:x")
    # A second store (a new process) knows nothing of it.
    assert SecretStore(backend=fail.Keyring()).get("endpoint:x") is None


def test_plaintext_backend_is_refused() -> None:
    class PlaintextKeyring(MemoryKeyring):
        pass

    PlaintextKeyring.__module__ = "keyrings.alt.file"
    store = SecretStore(backend=PlaintextKeyring())
    assert "plaintext" in store.keychain_problem()
    with pytest.raises(KeychainUnavailable, match="plaintext"):
        store.set("hf_token", "hf_x")
