"""API keys and the Hugging Face token, kept in the OS keychain through ``keyring`` and nowhere else.

Names in the keychain (service ``vllm-desk``): ``endpoint:<name>``, ``profile:<name>``, ``hf_token``.
Where no keychain works (a fresh venv has keyring's ``fail`` backend; headless Linux has no Secret Service),
:class:`KeychainUnavailable` says so, and the caller may offer "remember for this session only", which
keeps the secret in this process's memory. There is no plaintext fallback, on purpose.
"""

from __future__ import annotations

import logging

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

from engine.errors import DeskError, Fix

log = logging.getLogger(__name__)

SERVICE = "vllm-desk"
HF_TOKEN = "hf_token"


def endpoint_key(name: str) -> str:
    return f"endpoint:{name}"


def profile_key(name: str) -> str:
    return f"profile:{name}"


class KeychainUnavailable(DeskError):
    title = "No keychain is available"

    def __init__(self, reason: str) -> None:
        super().__init__(
            "vLLM Desk keeps keys only in the system keychain, and none is working here "
            f"({reason}). The key can be remembered for this session only; it is never written to disk.",
            fix=Fix(
                action="remember_for_session",
                label="Remember for this session only",
                hint="Start a Secret Service (e.g. gnome-keyring) or set PYTHON_KEYRING_BACKEND.",
            ),
        )
        self.reason = reason


def _plaintext(backend: KeyringBackend) -> bool:
    # keyrings.alt's file backends only encode: using one silently would put keys on disk.
    return type(backend).__module__.startswith("keyrings.alt")


class SecretStore:
    """Get, set, rename and delete secrets; the keychain first, then this session's memory."""

    def __init__(self, service: str = SERVICE, backend: KeyringBackend | None = None) -> None:
        self.service = service
        self._backend = backend
        self._session: dict[str, str] = {}

    @property
    def backend(self) -> KeyringBackend:
        return self._backend if self._backend is not None else keyring.get_keyring()

    def keychain_problem(self) -> str:
        """Why the keychain cannot be used, or ``""`` when it works (it is probed, not guessed)."""
        backend = self.backend
        if _plaintext(backend):
            return f"only a plaintext file store is configured ({type(backend).__name__})"
        try:
            backend.get_password(self.service, "__probe__")
        except keyring.errors.NoKeyringError:
            return "no keychain backend is installed or running"
        except keyring.errors.KeyringError as exc:
            return f"the keychain refused access ({exc})"
        return ""

    @property
    def keychain_available(self) -> bool:
        return not self.keychain_problem()

    def get(self, name: str) -> str | None:
        """The secret, from this session's memory or the keychain; ``None`` if there is none."""
        if name in self._session:
            return self._session[name]
        if self.keychain_problem():
            return None
        try:
            return self.backend.get_password(self.service, name)
        except keyring.errors.KeyringError as exc:
            log.warning("keychain read of %s failed: %s", name, exc)
            return None

    def set(self, name: str, value: str, *, session_only: bool = False) -> None:
        """Store ``value``; :class:`KeychainUnavailable` if no keychain works and ``session_only`` is off."""
        if session_only:
            self._session[name] = value
            return
        problem = self.keychain_problem()
        if problem:
            raise KeychainUnavailable(problem)
        try:
            self.backend.set_password(self.service, name, value)
        except keyring.errors.KeyringError as exc:
            raise KeychainUnavailable(str(exc)) from exc
        self._session.pop(name, None)

    def delete(self, name: str) -> None:
        """Forget the secret everywhere (absent is fine)."""
        self._session.pop(name, None)
        if self.keychain_problem():
            return
        try:
            self.backend.delete_password(self.service, name)
        except keyring.errors.PasswordDeleteError:
            pass
        except keyring.errors.KeyringError as exc:
            log.warning("keychain delete of %s failed: %s", name, exc)

    def rename(self, old: str, new: str) -> None:
        """Move a secret when its profile or endpoint is renamed."""
        value = self.get(old)
        if value is None:
            return
        session_only = old in self._session
        self.set(new, value, session_only=session_only)
        self.delete(old)

    def is_session_only(self, name: str) -> bool:
        return name in self._session
