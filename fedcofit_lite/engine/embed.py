"""Sentence embeddings of answers: the space in which the server finds consensus."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..progress import bars_disabled


def embed_texts(embedder: Any, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
    """L2-normalised embeddings, shape (len(texts), dim), float32.

    An empty answer is embedded as the empty string: it lands somewhere specific in the space, which is exactly the
    kind of artefact consensus must be robust to (and the notebooks show).
    """
    if not texts:
        return np.zeros((0, embedder.get_sentence_embedding_dimension()), dtype=np.float32)
    bar = progress and not bars_disabled() and len(texts) > batch_size
    vectors = embedder.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=bar
    )
    return vectors.astype(np.float32, copy=False)
