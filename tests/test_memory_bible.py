"""Story bible index: real chroma in tmp folders, the real offline MiniLM embedding model."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from memory.bible import (
    EMBEDDING_NAME,
    Bible,
    BibleHit,
    _package_dir,
    load_embedder,
    record_text,
)
from memory.canon import Canon, Record
from memory.errors import BackendError, InputError

AIKO = {
    "name": "Aiko", "role": "lead", "personality": "shy but stubborn",
    "look": "long black hair, a red scarf over a navy school uniform", "voice": "soft, quick",
}
REN = {"name": "Ren", "role": "rival", "personality": "cold and clever", "voice": "low and slow"}
SHRINE = {"name": "Fox Shrine", "description": "an old stone shrine on a hill, moss, paper lanterns"}
STATION = {"name": "Night Station", "description": "an empty train platform after midnight"}
UMBRELLA = {"name": "Umbrella", "description": "a broken paper umbrella, patched with tape"}


@pytest.fixture(scope="module")
def embedder():
    """Load the model once for the module; every Bible in this process shares it."""
    return load_embedder()


@pytest.fixture
def store(tmp_path: Path, embedder):
    canon = Canon(tmp_path / "canon.sqlite")
    bible = Bible(tmp_path / "bible" / "chroma")
    records = {
        key: canon.create(kind, data, actor="human")
        for key, kind, data in [
            ("aiko", "character", AIKO), ("ren", "character", REN), ("shrine", "location", SHRINE),
            ("station", "location", STATION), ("umbrella", "prop", UMBRELLA),
        ]
    }
    for record in records.values():
        bible.index(record)
    yield canon, bible, records
    bible.close()
    canon.close()


# --- record_text (no model) -------------------------------------------------------------------


def _rec(kind: str, data: dict, record_id: str = "x-1") -> Record:
    return Record(id=record_id, kind=kind, rev=1, data=data, created_at="", actor="human")


def test_record_text_reads_like_a_bible_entry() -> None:
    text = record_text(_rec("character", AIKO, "character-aiko"))
    assert text == (
        "Character Aiko — role: lead; personality: shy but stubborn; "
        "look: long black hair, a red scarf over a navy school uniform; voice: soft, quick"
    )


def test_record_text_is_generic_and_stable() -> None:
    data = {"zeta": 1, "name": "Opening", "mood": "tense", "_internal": "skip me", "beats": ["meet", "rain"],
            "camera": {"move": "push in", "lens": 35}, "empty": "", "missing": None, "night": True}
    shuffled = dict(reversed(list(data.items())))
    text = record_text(_rec("beats", data))
    assert text == record_text(_rec("beats", shuffled))
    assert text == (
        "Beats Opening — mood: tense; beats: meet, rain; camera: (lens 35, move push in); "
        "night: yes; zeta: 1"
    )
    assert record_text(_rec("shot", {}, "shot-7")) == "Shot shot-7"
    assert record_text(_rec("episode", {"title": "Rain", "n": 1})).startswith("Episode Rain — n: 1")
    long = record_text(_rec("scene", {"name": "Long", "action": "word " * 1000}))
    assert len(long) < 1300 and long.endswith("…")


def test_missing_package_names_the_pip_install() -> None:
    with pytest.raises(BackendError, match="pip install no-such-embedder==9"):
        _package_dir("no_such_embedder_pkg", "no-such-embedder==9")


# --- the embedding model ----------------------------------------------------------------------


def test_embedder_unit_vectors_and_meaning(embedder, record_property) -> None:
    vectors = embedder.embed(["a girl in a red scarf", "a young woman wearing a red scarf",
                              "train timetable for platform four", "a girl in a red scarf"])
    assert vectors.shape == (4, 384)
    assert abs(float((vectors ** 2).sum(axis=1).max()) - 1.0) < 1e-4
    assert (vectors[0] == vectors[3]).all()
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.7 and unrelated < 0.3
    # Batching and padding must not change a sentence's vector.
    alone = embedder.embed(["a girl in a red scarf"])[0]
    assert float(alone @ vectors[0]) > 0.9999

    sentences = [f"Shot {i}: Aiko runs through the rain toward the fox shrine, close-up" for i in range(200)]
    start = time.perf_counter()
    embedder.embed(sentences)
    rate = len(sentences) / (time.perf_counter() - start)
    record_property("embed_sentences_per_s", round(rate, 1))
    assert rate > 10, f"embedding ran at {rate:.1f} sentences/s"


# --- the index --------------------------------------------------------------------------------


def test_search_by_meaning(store) -> None:
    _, bible, records = store
    hits = bible.search("what does she wear", k=3)
    assert all(isinstance(hit, BibleHit) for hit in hits)
    assert hits[0].record_id == records["aiko"].id
    assert hits[0].kind == "character" and hits[0].name == "Aiko"
    assert "red scarf" in hits[0].text
    assert [h.distance for h in hits] == sorted(h.distance for h in hits)
    assert bible.search("an old temple on a hill", k=1)[0].record_id == records["shrine"].id
    assert bible.search("trains late at night", k=1)[0].record_id == records["station"].id


def test_kinds_filter_and_k(store) -> None:
    _, bible, records = store
    places = bible.search("what does she wear", kinds=["location"], k=5)
    assert {h.record_id for h in places} == {records["shrine"].id, records["station"].id}
    mixed = bible.search("who is in the story", kinds=("character", "prop"), k=5)
    assert {h.kind for h in mixed} <= {"character", "prop"} and len(mixed) == 3
    assert bible.search("rain", kinds="prop")[0].record_id == records["umbrella"].id
    assert bible.search("rain", kinds=[]) == []
    assert len(bible.search("rain", k=2)) == 2
    assert len(bible.search("rain", k=50)) == 5
    assert bible.search("   ") == []
    with pytest.raises(InputError, match="villain"):
        bible.search("rain", kinds=["villain"])
    with pytest.raises(InputError, match="k=0"):
        bible.search("rain", k=0)


def test_edit_reindex_replaces_old_text(store) -> None:
    canon, bible, records = store
    before = bible.search("red scarf", k=1)[0]
    assert before.record_id == records["aiko"].id
    edited = canon.revise(records["aiko"].id, {**AIKO, "look": "yellow raincoat and rubber boots"}, actor="human")
    bible.index(edited)
    assert bible.count() == 5
    after = {h.record_id: h for h in bible.search("red scarf", k=5)}
    assert "red scarf" not in after[records["aiko"].id].text
    assert after[records["aiko"].id].distance > before.distance + 0.1
    top = bible.search("yellow raincoat", k=1)[0]
    assert top.record_id == records["aiko"].id and "rubber boots" in top.text


def test_delete_removes_from_index(store) -> None:
    canon, bible, records = store
    bible.index(canon.delete(records["aiko"].id, actor="human"))
    assert bible.count() == 4
    assert records["aiko"].id not in {h.record_id for h in bible.search("red scarf school uniform", k=5)}
    bible.remove("character-never-indexed")
    bible.remove(records["ren"].id)
    assert bible.count() == 3
    bible.index(canon.revert(records["aiko"].id, 1, actor="human"))
    assert bible.search("what does she wear", k=1)[0].record_id == records["aiko"].id


def test_empty_collection_searches_to_nothing(tmp_path: Path, embedder) -> None:
    with Bible(tmp_path / "chroma") as bible:
        assert bible.count() == 0
        assert bible.search("anything") == []


def test_rebuild_from_canon_after_losing_the_folder(store, tmp_path: Path) -> None:
    canon, bible, records = store
    canon.delete(records["ren"].id, actor="human")
    bible.remove(records["ren"].id)
    expected = [(h.record_id, round(h.distance, 4)) for h in bible.search("what does she wear", k=4)]
    bible.close()
    shutil.rmtree(tmp_path / "bible" / "chroma")
    with Bible(tmp_path / "bible" / "chroma") as fresh:
        assert fresh.count() == 0
        assert fresh.rebuild(canon) == 4
        assert fresh.count() == 4
        got = [(h.record_id, round(h.distance, 4)) for h in fresh.search("what does she wear", k=4)]
        assert got == expected
        assert fresh.rebuild(canon) == 4  # rebuilding twice does not duplicate
    # the fixture closes `bible` again; closing twice is harmless


def test_reopen_restores_the_embedding_function(store, tmp_path: Path) -> None:
    _, bible, records = store
    chroma_dir = tmp_path / "bible" / "chroma"
    bible.close()
    with Bible(chroma_dir) as reopened:
        assert reopened.count() == 5
        assert reopened.search("what does she wear", k=1)[0].record_id == records["aiko"].id

    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(chroma_dir), settings=Settings(anonymized_telemetry=False))
    try:
        collection = client.get_collection("bible")  # no embedding function passed: chroma restores ours
        assert collection.configuration["embedding_function"].name() == EMBEDDING_NAME
        result = collection.query(query_texts=["what does she wear"], n_results=1)
        assert result["ids"][0] == [records["aiko"].id]
    finally:
        client.close()


def test_sync_indexes_what_canon_has_and_the_index_lacks(store, tmp_path: Path) -> None:
    canon, bible, records = store
    assert bible.sync(canon) == 0                                  # up to date: nothing embedded
    assert bible.missing(canon) == ([], [], [])
    aiko = canon.revise(records["aiko"].id, {**AIKO, "look": "a green kimono"}, actor="human")
    kaito = canon.create("character", {"name": "Kaito", "role": "ferryman"}, actor="human")
    canon.delete(records["umbrella"].id, actor="human")
    canon.create("take", {"path": "assets/audio/x.wav"}, actor="human")   # media: never indexed
    assert bible.missing(canon) == ([kaito.id], [aiko.id], [records["umbrella"].id])
    assert bible.sync(canon) == 2
    assert bible.missing(canon) == ([], [], [])
    hit = bible.search("who wears a green kimono", kinds=["character"], k=1)[0]
    assert hit.record_id == aiko.id and "green kimono" in hit.text
    assert bible.count() == 5


def test_sync_refills_a_deleted_index_and_stops_when_asked(store, tmp_path: Path) -> None:
    import threading

    canon, bible, _ = store
    bible.close()
    shutil.rmtree(tmp_path / "bible" / "chroma")
    with Bible(tmp_path / "bible" / "chroma") as fresh:
        stop = threading.Event()
        stop.set()
        assert fresh.sync(canon, stop=stop) == 0 and fresh.count() == 0
        assert fresh.sync(canon) == 5 and fresh.count() == 5
