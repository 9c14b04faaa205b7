"""An embedder on a server the app launched keeps no connection: Haystack's embedders hold their own clients
and have no close, so a kept socket would outlive them (the real-vLLM embedding tests saw "unclosed socket"
once chat connections to launched servers were kept). The server keeps connections open as vLLM does
(``keep_alive``) and notes each request's client port (one port, one connection)."""

from __future__ import annotations

import gc

from engine.documents.embedder import endpoint_embedder
from engine.endpoint import Endpoint
from tests.support.embeddings_server import bag_of_words, running_embeddings_server


def test_an_embedder_on_a_launched_server_keeps_no_connection() -> None:
    with running_embeddings_server(keep_alive=True) as server:
        # As the supervisor describes a server it launched: its keep-alive known, chat connections kept.
        launched = Endpoint(base_url=server.base_url, model=server.model, keep_alive_s=600)
        embedder = endpoint_embedder(launched)
        assert embedder.embed_query("cats") == bag_of_words("cats")
        assert embedder.embed_query("dogs") == bag_of_words("dogs")
        assert len(server.client_ports) == 2
        assert server.client_ports[0] != server.client_ports[1]  # a connection each, none kept
        del embedder
        gc.collect()  # an open socket collected here would be a ResourceWarning, an error in this suite
