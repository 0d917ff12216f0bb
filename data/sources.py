"""Where the text comes from: the synthetic source, tiny Shakespeare (embedded), a local file, or TFDS."""

from importlib import resources
from pathlib import Path

from data.synthetic import SyntheticSpec, generate

SOURCES = ("synthetic", "shakespeare", "text", "tfds")
_OFFLINE_CHOICES = "data=shakespeare (embedded), data.source=synthetic, or data.source=text data.path=FILE"
SHAKESPEARE = "tinyshakespeare.txt"  # Karpathy's char-rnn copy, public domain, shipped as package data


class DataError(ValueError):
    """The requested text cannot be loaded; the message says why in one line."""


def load_text(
    source: str = "synthetic",
    *,
    path: str | None = None,
    tfds_name: str = "tiny_shakespeare",
    tfds_dir: str | None = None,
    tfds_split: str = "train",
    tfds_download: bool = True,
    synthetic: SyntheticSpec | None = None,
    n_blocks: int = 20000,
    seed: int = 0,
) -> str:
    """The text of `source`: "synthetic" (default, offline), "shakespeare" (embedded, offline), "text" or "tfds".

    "text" reads the UTF-8 file `path`. "tfds" concatenates the `text`
    feature of split `tfds_split` of `tfds_name` from array_record files in
    `tfds_dir` (TFDS default when None); with `tfds_download` it first tries
    to download and prepare a missing dataset (needs network; TFDS retries
    for minutes before giving up; most builders, tiny_shakespeare's among
    them, also need TensorFlow: the `tfds` extra).
    """
    if source == "synthetic":
        return generate(synthetic or SyntheticSpec(), n_blocks, seed)
    if source == "shakespeare":
        return resources.files("data").joinpath(SHAKESPEARE).read_text(encoding="utf-8")
    if source == "text":
        return _read_text_file(path)
    if source == "tfds":
        return _read_tfds(tfds_name, tfds_split, tfds_dir, tfds_download)
    raise DataError(f"unknown data source {source!r}; choose one of {SOURCES}")


def _read_text_file(path: str | None) -> str:
    if path is None:
        raise DataError("data source 'text' needs a path (data.path=FILE)")
    file = Path(path)
    if not file.exists():
        raise DataError(f"{path}: no such file")
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read ({error.strerror or error})") from error
    if not raw:
        raise DataError(f"{path}: file is empty")
    if b"\x00" in raw:
        raise DataError(
            f"{path}: binary file (contains NUL bytes), expected UTF-8 text"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 text "
            f"(byte {raw[error.start]:#04x} at offset {error.start})"
        ) from error


def _read_tfds(name: str, split: str, data_dir: str | None, download: bool) -> str:
    """Concatenated `text` feature of one split, read without TensorFlow."""
    import tensorflow_datasets as tfds  # slow import, only paid by this source

    try:
        builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"unknown TFDS dataset {name!r}") from None
    where = data_dir or "the default TFDS data_dir"
    if download:
        try:
            builder.download_and_prepare(file_format="array_record")
        except Exception as error:  # network failures come in many exception types
            if _is_missing_tensorflow(error):
                raise DataError(
                    f'TFDS needs TensorFlow to prepare {name!r}: pip install -e ".[tfds]", '
                    "or use data=shakespeare (embedded) or data.source=text data.path=FILE"
                ) from error
            raise DataError(
                f"TFDS dataset {name!r} is not prepared in {where} and could not be "
                f"downloaded ({_first_line(error)}); offline, use {_OFFLINE_CHOICES}"
            ) from error
    elif not builder.is_prepared():
        raise DataError(
            f"TFDS dataset {name!r} is not prepared in {where} and download is "
            f"disabled; offline, use {_OFFLINE_CHOICES}"
        )
    try:
        records = builder.as_data_source(split=split)
    except (ValueError, NotImplementedError) as error:  # bad split, not array_record
        raise DataError(f"TFDS dataset {name!r}: {_first_line(error)}") from error
    texts = [record["text"] for record in records]
    return "".join(t.decode("utf-8") if isinstance(t, bytes) else t for t in texts)


def _is_missing_tensorflow(error: Exception) -> bool:
    """Most TFDS builders read their downloads with tf.io.gfile, imported only when preparing."""
    return isinstance(error, ImportError) and (error.name or "").partition(".")[0] == "tensorflow"


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
