"""The multilingual embedder's code path with a real (tiny, randomly initialised) model: no multilingual
sentence-transformers model ships on PyPI, so the test builds one offline, with its own tokenizer trained
on the sample's English, German and Japanese text, CLS pooling and e5's prompts, and Kura converts it
like any model folder a user points to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ingest.collection import Collection
from rag.config import Settings, load_settings
from rag.errors import KuraError
from rag.models.factory import load_embedder
from rag.retrieval import HybridRetriever
from rag.store import open_store
from tests.conftest import SAMPLE, write_config

pytestmark = pytest.mark.slow

PROMPTS = {"query": "query: ", "document": "passage: "}
MAX_LENGTH = 64
SAME = 0.999  # cosine at which two vectors count as the same (OpenVINO runs bf16 on this CPU)
TEXTS = [
    "Was kostet das Tagesgericht für Beschäftigte?",
    "Bargeld wird an der Kasse nicht angenommen.",
    "入館カードを紛失した場合は、すぐに総務へ連絡してください。",
    "受付の対応時間は平日9時30分から18時までです。",
]


def _tokenizer() -> Any:
    """A BERT-style WordPiece tokenizer that knows German umlauts and Japanese script."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    corpus = [
        (SAMPLE / name).read_text(encoding="utf-8") for name in ("it-handbook.md", "kantine-de.md", "office-ja.txt")
    ]
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend.train_from_iterator(corpus, trainers.WordPieceTrainer(vocab_size=3000, special_tokens=special))
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    backend.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=MAX_LENGTH,
    )


@pytest.fixture(scope="module")
def tiny_multilingual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    hf = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _tokenizer()
    torch.manual_seed(0)
    # At BERT's usual 0.02 every text gets nearly the same vector (a missing prefix still scores 0.99999);
    # at 0.2 a wrong prefix or pooling falls clearly below SAME while OpenVINO's bf16 still matches at 0.9999.
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=128,
        initializer_range=0.2,
    )
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    transformer = Transformer(str(hf), max_seq_length=MAX_LENGTH)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="cls")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], prompts=PROMPTS, device="cpu")
    folder = tmp_path_factory.mktemp("tiny-multilingual-st")
    model.save(str(folder))
    return folder


@pytest.fixture(scope="module")
def reference(tiny_multilingual: Path) -> Any:
    """The saved model loaded back by sentence-transformers: the vectors a user would get without Kura."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_multilingual), device="cpu")


@pytest.fixture(scope="module")
def ml_settings(tiny_multilingual: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    folder = tmp_path_factory.mktemp("kura-multilingual")
    embedder = {"source": str(tiny_multilingual), "max_length": MAX_LENGTH, "buckets": [32, MAX_LENGTH]}
    ingest = {"chunk_size": MAX_LENGTH - 2, "chunk_overlap": 8}
    return load_settings(write_config(folder, embedder=embedder, ingest=ingest))


@pytest.fixture(scope="module")
def ml_embedder(ml_settings: Settings) -> Any:
    return load_embedder(ml_settings)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_prefixes_and_cls_pooling_match_sentence_transformers(ml_embedder: Any, reference: Any) -> None:
    assert ml_embedder.prefixes == {"query": "query: ", "document": "passage: ", "raw": ""}
    queries = np.array([ml_embedder.embed_query(text) for text in TEXTS])
    documents = np.array(ml_embedder.embed_documents(TEXTS))
    reference_queries = reference.encode(TEXTS, prompt_name="query", normalize_embeddings=True)
    reference_documents = reference.encode(TEXTS, prompt_name="document", normalize_embeddings=True)
    assert cosines(queries, reference_queries).min() >= SAME
    assert cosines(documents, reference_documents).min() >= SAME
    # The checks above would catch a missing or swapped prefix:
    assert cosines(ml_embedder.embed(TEXTS), reference_queries).max() < SAME
    assert cosines(documents, reference_queries).max() < SAME

    assert ml_embedder.pooling == "cls"
    tokens = reference.encode(TEXTS, prompt_name="query", output_value="token_embeddings")
    mean_pooled = np.array([np.asarray(t).mean(axis=0) for t in tokens])
    assert cosines(queries, mean_pooled).max() < SAME, "mean pooling would have given other vectors"


def test_settings_override_the_models_prefixes(ml_settings: Settings, ml_embedder: Any, reference: Any) -> None:
    custom = ml_settings.model_copy(deep=True)
    custom.embedder.query_prefix = "frage: "
    overridden = load_embedder(custom)
    assert overridden.prefixes == {"query": "frage: ", "document": "passage: ", "raw": ""}
    ours = np.array([overridden.embed_query(text) for text in TEXTS])
    assert cosines(ours, reference.encode(TEXTS, prompt="frage: ", normalize_embeddings=True)).min() >= SAME
    assert overridden.fingerprint() != ml_embedder.fingerprint(), "other prefixes, other vectors"
    assert overridden.fingerprint().split(":q=")[0] == ml_embedder.fingerprint().split(":q=")[0]

    custom.embedder.query_prefix = custom.embedder.document_prefix = ""
    plain = load_embedder(custom)
    assert plain.prefixes == {"query": "", "document": "", "raw": ""}
    assert ":q=" not in plain.fingerprint()


def test_ingest_and_retrieve_german_and_japanese(ml_settings: Settings, ml_embedder: Any, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("kantine-de.md", "office-ja.txt"):
        shutil.copy2(SAMPLE / name, docs / name)
    report = Collection(ml_settings).ingest([docs], ml_embedder)
    assert report.counts()["added"] == 2 and report.truncated == 0, report.to_dict()

    store = open_store(ml_settings, ml_embedder)
    got = store.with_vectors([chunk_id for chunk_id, _, _ in store.all_chunks()])
    texts = [f"{c.metadata['heading']}\n{c.text}" if c.metadata.get("heading") else c.text for c in got]
    counts = [ml_embedder.count_tokens(text) for text in texts]
    assert max(counts) <= MAX_LENGTH, "chunks are measured with the document prefix, so none is cut"
    prefix = len(ml_embedder.tokenizer.encode(PROMPTS["document"], add_special_tokens=False))
    assert max(counts) > MAX_LENGTH - prefix - 4, counts
    stored = np.asarray([c.vector for c in got], dtype=np.float32)
    assert np.allclose(stored, ml_embedder.embed(texts, kind="document"), atol=1e-5), "ingest embeds documents"

    vectors = dict(zip([c.id for c in got], stored, strict=True))
    retriever = HybridRetriever(store, ml_embedder, ml_settings.retrieval)
    for question, file_name in (
        ("Was kostet das Tagesgericht?", "kantine-de.md"),
        ("入館カードを紛失したら？", "office-ja.txt"),
    ):
        result = retriever.retrieve(question, k=3)
        assert result.hits[0].metadata["file_name"] == file_name, [h.metadata["file_name"] for h in result.hits]
        query = np.asarray(ml_embedder.embed_query(question), dtype=np.float32)
        for hit in result.hits:
            assert hit.score == pytest.approx(float(vectors[hit.id] @ query), abs=1e-4), "questions embed as queries"


def test_a_dense_module_is_refused_before_export(
    tiny_multilingual: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "with-dense"
    shutil.copytree(tiny_multilingual, folder)
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (folder / "modules.json").write_text(json.dumps(modules), encoding="utf-8")

    def no_export(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the model must be refused before the export starts")

    monkeypatch.setattr("optimum.exporters.openvino.main_export", no_export)
    settings = load_settings(write_config(tmp_path, embedder={"source": str(folder)}))
    with pytest.raises(KuraError) as error:
        load_embedder(settings)
    message = str(error.value)
    assert "\n" not in message
    assert "Dense module" in message and "Transformer, Pooling and Normalize" in message, message
