"""Pretrained models load from local files only unless ``allow_download=True``: a mistyped relative
``model_path`` fails at once with a clear error and no network attempt (security review, finding 7).
Also: a ``conll_file`` validation file of one tag warns, as a ``text_file`` one does."""

from __future__ import annotations

import socket
import warnings

import pytest

from complement.experiments.tasks import build_task, pretrained
from complement.experiments.tasks.embeddings import MeanPoolEncoder
from complement.experiments.tasks.pretrained import ModelFactory, load_tokenizer, sequence_classifier, token_classifier
from tests.helpers.hf import save_tiny_bert

transformers = pytest.importorskip("transformers")

MISSING = "models/minilm"  # relative, absent: reads like a hub name "org/model"
CONLL = "Empire\tB-facility\nState\tI-facility\nrocks\tO\n\nI\tO\nlove\tO\nParis\tB-geo-loc\n\n"


@pytest.fixture(autouse=True)
def fresh_tokenizers():
    load_tokenizer.cache_clear()  # a tokenizer cached by another test would skip from_pretrained
    yield
    load_tokenizer.cache_clear()


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """Every name lookup or connection fails the test; the attempts are recorded (and must stay empty).

    huggingface_hub's once-a-process fetch of its agent registry (made even for a local-only
    look-up) is re-armed, so the test sees it whatever ran before in this process."""
    attempts: list[object] = []
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "no-registry.json"))
    try:
        from huggingface_hub.utils import _detect_agent
    except ImportError:  # an older huggingface_hub: no registry to fetch
        pass
    else:
        monkeypatch.setattr(_detect_agent, "_registry", None, raising=False)

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # the protection must not rely on these
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("huggingface.co", 443))
    attempts.clear()
    return attempts


@pytest.fixture
def spy(monkeypatch):
    """Record the ``local_files_only`` each Auto class's ``from_pretrained`` gets, then call the real one."""
    seen: list[tuple[str, object]] = []
    names = ["AutoTokenizer", "AutoModel", "AutoModelForSequenceClassification", "AutoModelForTokenClassification"]
    for name in names:
        auto = getattr(transformers, name)
        real = auto.from_pretrained

        def fake(path, *args, _name=name, _real=real, **kwargs):
            seen.append((_name, kwargs.get("local_files_only", "missing")))
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", fake)
    return seen


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny BERT (1 layer, hidden 8) with MiniLM's tokenizer, saved as a local folder."""
    folder = tmp_path_factory.mktemp("hub") / "models" / "tiny"
    tokenizer = transformers.AutoTokenizer.from_pretrained(pretrained.default_model_path(), local_files_only=True)
    save_tiny_bert(folder, vocab_size=tokenizer.vocab_size)
    tokenizer.save_pretrained(folder)
    return folder


def write_csv(path, labels=("neg", "pos"), n=6):
    rows = [f"text {label} number {i},{label}" for label in labels for i in range(n)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return str(path)


def check_not_found(error: pytest.ExceptionInfo, path: str = MISSING) -> None:
    message = str(error.value)
    assert f"model_path not found: {path!r}" in message
    assert "no download was attempted" in message
    assert "allow_download=True" in message and "Check the path" in message


# --- finding 7: no hub fallback ------------------------------------------------------------


@pytest.mark.parametrize("name", ["text_file", "conll_file"])
def test_a_missing_relative_model_path_fails_clearly_without_network(tmp_path, monkeypatch, no_network, name):
    monkeypatch.chdir(tmp_path)
    if name == "text_file":
        data = write_csv(tmp_path / "data.csv")
    else:
        (tmp_path / "train.conll").write_text(CONLL * 5)
        data = str(tmp_path / "train.conll")
    with pytest.raises(FileNotFoundError) as error:
        build_task(name, data_path=data, model_path=MISSING, max_length=8)
    check_not_found(error)
    assert str(tmp_path / MISSING) in str(error.value)  # where it looked
    assert no_network == []


def test_every_loader_asks_for_local_files_only(tmp_path, monkeypatch, no_network, spy):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        load_tokenizer(MISSING)
    check_not_found(error)
    for loader in (sequence_classifier, token_classifier):
        with pytest.raises(FileNotFoundError) as error:
            loader(MISSING, ["a", "b"])
        check_not_found(error)
    with pytest.raises(FileNotFoundError) as error:
        MeanPoolEncoder(MISSING, 8)(["a text"])
    check_not_found(error)
    assert {name for name, _ in spy} == {
        "AutoTokenizer",
        "AutoModelForSequenceClassification",
        "AutoModelForTokenClassification",
    }  # MeanPoolEncoder stopped at its tokenizer
    assert all(flag is True for _, flag in spy), spy
    assert no_network == []


def test_a_local_relative_folder_loads_offline(tiny_model, monkeypatch, no_network, spy):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.chdir(tiny_model.parents[1])
    data = write_csv(tiny_model.parents[1] / "data.csv")
    task = build_task("text_file", data_path=data, model_path="models/tiny", max_length=16)
    model = task.build_model()
    assert model.training and task.info["model_path"] == "models/tiny"
    vectors = MeanPoolEncoder("models/tiny", 16)(["one text", "another"])
    assert tuple(vectors.shape) == (2, 8)
    assert {name for name, _ in spy} == {"AutoTokenizer", "AutoModelForSequenceClassification", "AutoModel"}
    assert all(flag is True for _, flag in spy), spy
    assert no_network == []
    assert constants.HF_HUB_OFFLINE is False  # the hub's offline mode lasted only as long as each load


def test_a_broken_local_folder_keeps_transformers_error(tmp_path, monkeypatch, no_network):
    (tmp_path / "models" / "minilm").mkdir(parents=True)  # exists, but holds no model
    monkeypatch.chdir(tmp_path)
    with pytest.raises((OSError, ValueError)) as error:
        load_tokenizer(MISSING)
    assert "no download was attempted" not in str(error.value)  # the folder is there: transformers says what lacks
    assert no_network == []


def test_allow_download_reaches_from_pretrained_as_false(tiny_model, monkeypatch, spy):
    # the opt-in keeps the real hub path: from_pretrained may download (here the folder is local, so it need not)
    monkeypatch.chdir(tiny_model.parents[1])
    data = write_csv(tiny_model.parents[1] / "data.csv")
    task = build_task("text_file", data_path=data, model_path="models/tiny", max_length=16, allow_download=True)
    assert isinstance(task.build_model, ModelFactory) and task.build_model.allow_download is True
    task.build_model()
    MeanPoolEncoder("models/tiny", 16, allow_download=True)(["a text"])
    assert {name for name, _ in spy} == {"AutoTokenizer", "AutoModelForSequenceClassification", "AutoModel"}
    assert all(flag is False for _, flag in spy), spy


def test_allow_download_error_is_left_to_transformers(tmp_path, monkeypatch):
    # with the opt-in, a failure is transformers' own (it tried the hub); no "no download was attempted"
    def fail(path, *args, **kwargs):
        assert kwargs["local_files_only"] is False
        raise OSError("hub said no")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fail)
    with pytest.raises(OSError, match="hub said no"):
        load_tokenizer(MISSING, True)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_allow_download_must_be_a_bool(tmp_path, value):
    data = write_csv(tmp_path / "data.csv")
    with pytest.raises(TypeError, match=r"allow_download must be true or false"):
        build_task("text_file", data_path=data, allow_download=value)


# --- conll_file: a validation file of one tag ----------------------------------------------


def one_class_warnings(tmp_path, val_text: str) -> list[str]:
    """The one-class warnings of a conll_file task whose val_path file holds ``val_text``."""
    (tmp_path / "train.conll").write_text(CONLL * 5)
    (tmp_path / "val.conll").write_text(val_text)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        build_task("conll_file", data_path=str(tmp_path / "train.conll"), val_path=str(tmp_path / "val.conll"),
                   test_size=2, max_length=8)  # fmt: skip
    return [str(w.message) for w in record if issubclass(w.category, UserWarning) and "holds only the class" in str(w)]


def test_conll_val_file_of_one_tag_warns(tmp_path):
    (message,) = one_class_warnings(tmp_path, "I\tO\nlove\tO\nit\tO\n\nfine\tO\n\n")
    assert "val.conll holds only the class 'O'" in message and "val_path" in message


def test_conll_val_file_of_two_tags_is_quiet(tmp_path):
    assert one_class_warnings(tmp_path, "Paris\tB-geo-loc\nrocks\tO\n\n") == []
