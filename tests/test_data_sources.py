"""Text sources: synthetic, local files (with one-line errors), and TFDS offline."""

import sys
from importlib import resources
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from data import CharTokenizer, DataError, SyntheticSpec, generate, load_text, unk_rate

SHAKESPEARE = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "data"
    / "tinyshakespeare.txt"
)
TOY_TRAIN = ["First line.\n", "Second line, é.\n", "Third.\n"]
TOY_VALIDATION = ["Held out.\n"]


class LabToyCorpus(tfds.core.GeneratorBasedBuilder):
    """A tiny in-memory TFDS text dataset, registered as "lab_toy_corpus"."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict({"text": tfds.features.Text()})
        return tfds.core.DatasetInfo(
            builder=self, features=features, disable_shuffling=True
        )

    def _split_generators(self, dl_manager):
        return {
            "train": self._generate_examples(TOY_TRAIN),
            "validation": self._generate_examples(TOY_VALIDATION),
        }

    def _generate_examples(self, lines):
        for index, line in enumerate(lines):
            yield index, {"text": line}


def _assert_one_line_data_error(call, *fragments):
    with pytest.raises(DataError) as error:
        call()
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_synthetic_is_the_default_source():
    assert load_text() == generate(SyntheticSpec(), 20000, 0)
    spec = SyntheticSpec(alphabet_size=5, span=3)
    assert load_text("synthetic", synthetic=spec, n_blocks=7, seed=4) == generate(
        spec, 7, 4
    )


def test_unknown_source_names_it_and_the_choices():
    _assert_one_line_data_error(
        lambda: load_text("wiki"), "'wiki'", "synthetic", "text", "tfds"
    )


def test_text_file_is_read_as_utf8(tmp_path):
    file = tmp_path / "corpus.txt"
    file.write_text("héllo\nwörld\n", encoding="utf-8")
    assert load_text("text", path=str(file)) == "héllo\nwörld\n"


@pytest.mark.parametrize(
    "name, content, complaint",
    [
        ("missing.txt", None, "no such file"),
        ("empty.txt", b"", "empty"),
        ("binary.bin", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        ("latin1.txt", "café".encode("latin-1"), "not UTF-8"),
    ],
)
def test_bad_text_files_raise_one_line_data_errors(tmp_path, name, content, complaint):
    file = tmp_path / name
    if content is not None:
        file.write_bytes(content)
    _assert_one_line_data_error(
        lambda: load_text("text", path=str(file)), str(file), complaint
    )


def test_unreadable_path_and_missing_path_raise_data_errors(tmp_path):
    _assert_one_line_data_error(
        lambda: load_text("text", path=str(tmp_path)), str(tmp_path), "cannot read"
    )
    _assert_one_line_data_error(lambda: load_text("text"), "data.path")


@pytest.mark.skipif(
    not SHAKESPEARE.exists(), reason="../shared/data/tinyshakespeare.txt not present"
)
def test_tiny_shakespeare_file_loads_and_tokenizes():
    text = load_text("text", path=str(SHAKESPEARE))
    assert len(text) > 1_000_000
    tokenizer = CharTokenizer.fit(text)
    ids = tokenizer.encode(text)
    assert unk_rate(ids, tokenizer.unk_id) == 0.0
    assert tokenizer.decode(ids) == text
    capped = CharTokenizer.fit(text, vocab_size=33)
    assert 0 < unk_rate(capped.encode(text), capped.unk_id) < 0.1


def test_embedded_shakespeare_needs_no_network_and_no_file_beside_the_package():
    text = load_text("shakespeare")
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    if SHAKESPEARE.exists():  # the shipped copy is the shared one, byte for byte
        assert text == SHAKESPEARE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def toy_tfds_dir(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("tfds")
    LabToyCorpus(data_dir=str(data_dir)).download_and_prepare(
        file_format="array_record"
    )
    return str(data_dir)


def test_tfds_reads_prepared_array_record_splits_in_order(toy_tfds_dir):
    assert list(Path(toy_tfds_dir).rglob("*.array_record-*"))
    train = load_text(
        "tfds", tfds_name="lab_toy_corpus", tfds_dir=toy_tfds_dir, tfds_download=False
    )
    assert train == "".join(TOY_TRAIN)
    validation = load_text(
        "tfds",
        tfds_name="lab_toy_corpus",
        tfds_dir=toy_tfds_dir,
        tfds_split="validation",
    )
    assert validation == "".join(TOY_VALIDATION)
    _assert_one_line_data_error(
        lambda: load_text(
            "tfds",
            tfds_name="lab_toy_corpus",
            tfds_dir=toy_tfds_dir,
            tfds_split="bogus",
        ),
        "'lab_toy_corpus'",
        "bogus",
    )


def test_tfds_mock_data_of_tiny_shakespeare_gives_text():
    with tfds.testing.mock_data(num_examples=3):  # also mocks download_and_prepare
        text = load_text("tfds", tfds_name="tiny_shakespeare")
    assert isinstance(text, str) and text


def test_tfds_missing_dataset_offline_names_it_and_the_alternatives(tmp_path):
    _assert_one_line_data_error(
        lambda: load_text(
            "tfds",
            tfds_name="tiny_shakespeare",
            tfds_dir=str(tmp_path / "none"),
            tfds_download=False,
        ),
        "'tiny_shakespeare'",
        "data.source=synthetic",
        "data.source=text data.path=",
    )


def test_tfds_unknown_dataset_name(tmp_path):
    _assert_one_line_data_error(
        lambda: load_text(
            "tfds",
            tfds_name="no_such_corpus",
            tfds_dir=str(tmp_path),
            tfds_download=False,
        ),
        "'no_such_corpus'",
    )


def test_tfds_failed_download_names_the_dataset_and_the_alternatives(
    tmp_path, monkeypatch
):
    def no_network(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'raw.githubusercontent.com'")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_network)
    message = _assert_one_line_data_error(
        lambda: load_text("tfds", tfds_name="tiny_shakespeare", tfds_dir=str(tmp_path)),
        "'tiny_shakespeare'",
        "Failed to resolve",
        "data.source=synthetic",
        "data.source=text data.path=",
    )
    assert "TensorFlow" not in message


def test_tfds_without_tensorflow_names_it_and_the_extra(tmp_path, monkeypatch):
    """tiny_shakespeare's builder reads its download with tf.io.gfile: without TensorFlow the
    one line says so, not that the download failed."""
    if "tensorflow" in sys.modules:
        pytest.skip("TensorFlow is already imported in this process")
    downloaded = str(resources.files("data").joinpath("tinyshakespeare.txt"))
    monkeypatch.setattr(
        tfds.download.DownloadManager, "download", lambda self, url: downloaded
    )  # no network
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # no TensorFlow, even if installed
    message = _assert_one_line_data_error(
        lambda: load_text("tfds", tfds_name="tiny_shakespeare", tfds_dir=str(tmp_path)),
        "TensorFlow",
        "'tiny_shakespeare'",
        'pip install -e ".[tfds]"',
        "data=shakespeare",
        "data.source=text data.path=FILE",
    )
    assert "could not be downloaded" not in message
