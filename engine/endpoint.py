"""The one thing every client of a server needs: where it is, what it serves, and the key."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server, local (launched by the supervisor) or remote; treated alike downstream.

    ``base_url`` ends in ``/v1`` (what OpenAI clients and Haystack's ``api_base_url`` expect);
    ``root_url`` is the server root for ``/health``, ``/metrics``, ``/tokenize``, ``/version``.
    """

    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # never printed, never serialised
    max_model_len: int | None = None
    kind: Literal["local", "remote"] = "local"
    profile_name: str = ""

    @property
    def root_url(self) -> str:
        url = self.base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @classmethod
    def from_models_entry(
        cls,
        root: str,
        entry: Mapping[str, object],
        *,
        api_key: str | None,
        kind: Literal["local", "remote"],
        profile_name: str,
    ) -> Endpoint:
        """The endpoint for one entry of a server's ``/v1/models`` answer, served under ``root``.

        vLLM adds ``max_model_len`` to each entry; other servers leave it out (or put something else there).
        """
        max_len = entry.get("max_model_len")
        return cls(
            base_url=f"{root}/v1",
            model=str(entry["id"]),
            api_key=api_key,
            max_model_len=max_len if isinstance(max_len, int) else None,
            kind=kind,
            profile_name=profile_name,
        )
