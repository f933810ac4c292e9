"""Tasks: packaged data sets build with tiny subsets, batches and logits have the documented
shapes, splits are deterministic and disjoint, the harder variants do exactly what they
say, users' files load, and bad input fails with a message that names the problem."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from complement.experiments.tasks import IGNORE_INDEX, Task, available_tasks, build_task, task_options
from complement.experiments.tasks.harder import long_tail_counts

PACKAGED = ["mnist", "mnist_noisy", "mnist_longtail", "mnist_fewshot", "digits", "tweets", "ner", "tweets_lm"]
USER = ["image_folder", "text_file", "conll_file", "text_file_lm"]
TINY = {"train_size": 40, "val_size": 12, "test_size": 16}


def first_batch(task: Task, split: str = "train", batch_size: int = 4):
    return next(iter(DataLoader(getattr(task, split), batch_size=batch_size, collate_fn=task.collate_fn)))


def check_batch_and_logits(task: Task, batch_size: int = 4) -> None:
    """The documented contract: (inputs, target) batches and class-last logits."""
    batch = first_batch(task, batch_size=batch_size)
    assert isinstance(batch, tuple) and len(batch) == 2
    inputs, target = batch
    assert target.dtype == torch.int64
    torch.manual_seed(0)
    model = task.build_model()
    model.eval()
    with torch.no_grad():
        logits = model(inputs)
    assert logits.dtype == torch.float32
    if task.kind in ("image", "text"):
        assert target.shape == (batch_size,)
        assert logits.shape == (batch_size, task.num_classes)
        assert int(target.min()) >= 0 and int(target.max()) < task.num_classes
    else:
        assert target.dim() == 2 and target.shape[0] == batch_size
        assert logits.shape == (*target.shape, task.num_classes)
        kept = target[target != IGNORE_INDEX]
        assert len(kept) > 0 and int(kept.min()) >= 0 and int(kept.max()) < task.num_classes
    if task.kind == "image":
        assert inputs.dtype == torch.float32 and inputs.dim() == 4 and inputs.shape[0] == batch_size
    elif task.kind in ("text", "token"):
        assert set(inputs) == {"input_ids", "attention_mask"}
        assert inputs["input_ids"].dtype == torch.int64 and inputs["input_ids"].shape == inputs["attention_mask"].shape
        assert inputs["input_ids"].shape[0] == batch_size
    else:
        assert inputs.dtype == torch.int64 and inputs.shape == target.shape
    for key in ("optimizer", "lr", "batch_size", "max_epochs", "weight_decay"):
        assert key in task.defaults


# --- packaged tasks, built once per module -------------------------------------------------


@pytest.fixture(scope="module")
def mnist():
    return build_task("mnist", seed=0, **TINY)


@pytest.fixture(scope="module")
def tweets():
    return build_task("tweets", seed=0, max_length=32, **TINY)


@pytest.fixture(scope="module")
def ner():
    return build_task("ner", seed=0, **TINY)


@pytest.fixture(scope="module")
def tweets_lm():
    return build_task("tweets_lm", seed=0, vocab_size=300, **TINY)


def test_registry_lists_every_task_and_its_options():
    tasks = available_tasks()
    assert set(PACKAGED + USER) <= set(tasks)
    assert all(isinstance(summary, str) and summary for summary in tasks.values())
    assert task_options("mnist_noisy")["label_noise"] == 0.4
    assert "data_path" in task_options("text_file")


def test_importing_tasks_does_not_load_transformers():
    # `complement list` and image-only users must not pay for transformers' import
    code = (
        "import sys, complement.experiments.tasks; "
        "assert 'transformers' not in sys.modules and 'mlxtend' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["mnist", "mnist_noisy", "mnist_longtail", "mnist_fewshot", "digits"])
def test_image_tasks_build_and_run(name):
    options = {} if name in ("mnist_longtail", "mnist_fewshot") else dict(TINY)
    task = build_task(name, seed=0, **options)
    assert task.name == name and task.kind == "image" and task.num_classes == 10
    assert task.class_names == [str(d) for d in range(10)]
    check_batch_and_logits(task)
    assert first_batch(task)[0].shape[1:] == ((1, 28, 28) if name.startswith("mnist") else (1, 8, 8))


def test_tweets_batches_and_logits(tweets):
    assert tweets.kind == "text" and tweets.class_names == ["negative", "neutral", "positive"]
    assert (len(tweets.train), len(tweets.val), len(tweets.test)) == (40, 12, 16)
    check_batch_and_logits(tweets)
    inputs, _ = first_batch(tweets)
    assert inputs["input_ids"].shape[1] <= 32
    # padding positions are masked out and hold the pad id
    pad = inputs["input_ids"][inputs["attention_mask"] == 0]
    assert (pad == 0).all()


def test_ner_labels_first_word_piece_only(ner):
    from transformers import AutoTokenizer

    from complement.experiments.tasks.readers import read_conll
    from complement.experiments.tasks.tokens import ner_path

    assert ner.kind == "token" and ner.num_classes == 21 and ner.class_names[0] == "O"
    assert all(name == "O" or name[:2] in ("B-", "I-") for name in ner.class_names)
    check_batch_and_logits(ner)
    # rebuild sentence 0 of the training split by hand with the tokenizer's word_ids()
    sentence = read_conll(ner_path())[ner.info["split"]["train"][0]]
    tokenizer = AutoTokenizer.from_pretrained(ner.info["model_path"])
    word_ids = tokenizer(sentence.tokens, is_split_into_words=True).word_ids()
    expected, previous = [], None
    for word in word_ids:
        expected.append(-100 if word is None or word == previous else ner.class_names.index(sentence.tags[word]))
        previous = word
    assert ner.train.targets[0].tolist() == expected
    assert ner.train[0][0]["input_ids"].tolist() == tokenizer(sentence.tokens, is_split_into_words=True)["input_ids"]


def test_lm_targets_are_inputs_shifted_by_one(tweets_lm):
    assert tweets_lm.kind == "lm" and tweets_lm.num_classes == 300
    assert tweets_lm.class_names[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    check_batch_and_logits(tweets_lm)
    inputs, target = first_batch(tweets_lm)
    assert (inputs[:, 0] == 2).all()  # every tweet starts with <bos>
    # target t is input t + 1 wherever input t + 1 is real (its own target is not padding)
    real = target[:, 1:] != IGNORE_INDEX
    assert torch.equal(target[:, :-1][real], inputs[:, 1:][real])
    assert (inputs[target == IGNORE_INDEX] == 0).all()  # padded inputs hold <pad>


def test_lm_char_level_and_gru():
    task = build_task("tweets_lm", level="char", model="gru", vocab_size=60, max_length=48, **TINY)
    assert task.num_classes <= 60 and task.info["max_length"] == 48
    check_batch_and_logits(task)


def test_lm_causal_model_ignores_the_future(tweets_lm):
    torch.manual_seed(0)
    model = tweets_lm.build_model().eval()
    ids = torch.randint(4, 300, (2, 12))
    changed = ids.clone()
    changed[:, 8:] = 5
    with torch.no_grad():
        assert torch.allclose(model(ids)[:, :8], model(changed)[:, :8], atol=1e-5)


# --- splits and harder variants ------------------------------------------------------------


def test_splits_are_deterministic_disjoint_and_stratified(mnist):
    again = build_task("mnist", seed=0, **TINY)
    other = build_task("mnist", seed=1, **TINY)
    split = mnist.info["split"]
    assert split == again.info["split"]
    assert split != other.info["split"]
    assert torch.equal(mnist.train.inputs, again.train.inputs)
    train, val, test = (set(split[k]) for k in ("train", "val", "test"))
    assert len(train) == 40 and len(val) == 12 and len(test) == 16
    assert not (train & val or train & test or val & test)
    # stratified: 40 training images of 10 classes are 4 a class
    assert torch.bincount(mnist.train.targets, minlength=10).tolist() == [4] * 10
    # the test set does not move when the training set shrinks
    assert build_task("mnist", seed=0, train_size=20, val_size=12, test_size=16).info["split"]["test"] == split["test"]


def test_text_and_token_and_lm_splits_are_disjoint(tweets, ner, tweets_lm):
    for task in (tweets, ner, tweets_lm):
        split = task.info["split"]
        train, val, test = (set(split[k]) for k in ("train", "val", "test"))
        assert not (train & val or train & test or val & test), task.name
    assert build_task("ner", seed=0, **TINY).info["split"] == ner.info["split"]


def test_label_noise_flips_exactly_the_fraction():
    clean = build_task("mnist", seed=3, train_size=200, val_size=20, test_size=20)
    noisy = build_task("mnist", seed=3, train_size=200, val_size=20, test_size=20, label_noise=0.25)
    flipped = noisy.train.targets != noisy.train.clean_targets
    assert int(flipped.sum()) == 50 == noisy.info["flipped_labels"]
    # the noise does not move the split, and val / test stay clean
    assert torch.equal(noisy.train.clean_targets, clean.train.targets)
    assert torch.equal(noisy.test.targets, clean.test.targets)
    again = build_task("mnist", seed=3, train_size=200, val_size=20, test_size=20, label_noise=0.25)
    assert torch.equal(again.train.targets, noisy.train.targets)
    # flipped labels land on the other classes, all of them
    assert len(set(noisy.train.targets[flipped].tolist())) == 10


def test_label_noise_on_text(tweets):
    noisy = build_task("tweets", seed=0, max_length=32, label_noise=0.5, **TINY)
    assert int((noisy.train.targets != noisy.train.clean_targets).sum()) == 20
    assert torch.equal(noisy.train.clean_targets, tweets.train.targets)


def test_imbalance_gives_the_long_tail_counts():
    task = build_task("mnist", seed=0, train_size=500, val_size=20, test_size=20, imbalance=10)
    expected = long_tail_counts(10, 50, 10)
    assert expected[0] == 50 and expected[-1] == 5 and expected == sorted(expected, reverse=True)
    assert torch.bincount(task.train.targets, minlength=10).tolist() == expected
    assert torch.bincount(task.test.targets, minlength=10).tolist() == [2] * 10  # test stays balanced
    assert long_tail_counts(3, 100, 100) == [100, 10, 1]


def test_few_shot_takes_n_per_class():
    task = build_task("digits", seed=0, few_shot=3)
    assert torch.bincount(task.train.targets, minlength=10).tolist() == [3] * 10
    assert task.defaults["max_epochs"] >= build_task("digits", seed=0).defaults["max_epochs"]


def test_build_model_is_fresh_and_seeded_by_the_caller(mnist, tweets):
    for task in (mnist, tweets):
        torch.manual_seed(1)
        a = task.build_model()
        torch.manual_seed(1)
        b = task.build_model()
        assert a is not b
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            assert torch.equal(p, q), name


def test_built_models_start_in_training_mode(mnist, tweets, ner, tweets_lm):
    # from_pretrained returns eval mode and Lightning keeps submodule modes: dropout would be off in training
    for task in (mnist, tweets, ner, tweets_lm):
        model = task.build_model()
        assert all(m.training for m in model.modules()), task.name


# --- users' files ---------------------------------------------------------------------------


def write_csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def sentiment_rows(n_per_class: int = 10) -> list[str]:
    words = {"good": "pos", "awful": "neg", "meh": "neu"}
    return [f'"this is {w} number {i}, really",{label}' for w, label in words.items() for i in range(n_per_class)]


def test_user_csv(tmp_path):
    path = write_csv(tmp_path / "data.csv", sentiment_rows())
    task = build_task("text_file", data_path=str(path), seed=0)
    assert task.class_names == ["neg", "neu", "pos"]
    # 10% / 20% of 30 rows held out by default
    assert (len(task.train), len(task.val), len(task.test)) == (21, 3, 6)
    check_batch_and_logits(task)


def test_user_jsonl_with_own_columns_and_separate_files(tmp_path):
    def jsonl(name, n):
        rows = [{"body": f"sample {i} of {label}", "y": label} for label in (1, 2, 10) for i in range(n)]
        (tmp_path / name).write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        return str(tmp_path / name)

    task = build_task(
        "text_file",
        data_path=jsonl("train.jsonl", 6),
        val_path=jsonl("val.jsonl", 2),
        test_path=jsonl("test.jsonl", 3),
        text_column="body",
        label_column="y",
        train_size=12,
    )
    assert task.class_names == ["1", "2", "10"]  # integer labels sort numerically
    assert (len(task.train), len(task.val), len(task.test)) == (12, 6, 9)
    assert torch.bincount(task.test.targets).tolist() == [3, 3, 3]


def test_user_tsv_with_fixed_label_order(tmp_path):
    rows = [f"text {i}\t{'b' if i % 2 else 'a'}" for i in range(20)]
    path = tmp_path / "data.tsv"
    path.write_text("text\tlabel\n" + "\n".join(rows))
    task = build_task("text_file", data_path=str(path), labels=["b", "a"], val_size=4, test_size=4)
    assert task.class_names == ["b", "a"]
    assert len(task.train) == 12


CONLL = "Empire\tB-facility\nState\tI-facility\nrocks\tO\n\nI\tO\nlove\tO\nParis\tB-geo-loc\n\n"


def test_user_conll_tab_and_space(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("-DOCSTART- -X- O O\n\n" + CONLL * 5)
    spaced = tmp_path / "test.conll"
    spaced.write_text("Paris NNP B-NP B-geo-loc\nrocks VBZ B-VP O\n\nEmpire NNP B-NP B-facility\n")
    task = build_task("conll_file", data_path=str(path), test_path=str(spaced), val_size=2)
    assert task.class_names == ["O", "B-facility", "I-facility", "B-geo-loc"]
    assert (len(task.train), len(task.val), len(task.test)) == (8, 2, 2)
    check_batch_and_logits(task, batch_size=2)
    # each word's tag sits on its first piece: as many labels as words
    labeled = [int((t != IGNORE_INDEX).sum()) for t in task.test.targets]
    assert sorted(labeled) == [1, 2]


def write_images(root, classes, n, mode="L", size=(20, 12)):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(n):
            shape = size[::-1] + ((3,) if mode == "RGB" else ())
            suffix = ".jpg" if mode == "RGB" and i % 2 else ".png"  # JPEG and PNG both read
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / name / f"{i}{suffix}")
    (root / "notes.txt").write_text("not an image")
    return root


def test_user_image_folder_gray_and_rgb(tmp_path):
    gray = write_images(tmp_path / "gray", ["cat", "dog", "eel"], 6)
    task = build_task("image_folder", data_path=str(gray), image_size=16, val_size=3, test_size=3)
    assert task.class_names == ["cat", "dog", "eel"] and len(task.train) == 12
    assert first_batch(task)[0].shape == (4, 1, 16, 16)
    check_batch_and_logits(task)
    rgb = write_images(tmp_path / "rgb", ["a", "b"], 5, mode="RGB")
    val = write_images(tmp_path / "rgb_val", ["b"], 2, mode="RGB")
    task = build_task(
        "image_folder",
        data_path=str(rgb),
        val_path=str(val),
        image_size=(8, 12),
        test_size=2,
        model="mlp",
        augment=True,
        flip=True,
    )
    assert first_batch(task)[0].shape == (4, 3, 8, 12)
    assert (len(task.train), len(task.val), len(task.test)) == (8, 2, 2)
    assert task.val.targets.tolist() == [1, 1]
    check_batch_and_logits(task)


def test_user_text_lm(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(f"the cat number {i} sat on the mat ." for i in range(30)))
    task = build_task("text_file_lm", data_path=str(path), vocab_size=20, max_length=4)
    assert task.class_names[4] == "the"  # the most frequent word after the specials
    # <bos> + 9 words + <eos> = 11 ids: 10 predictions in windows of 4, 4 and 2
    assert len(task.train) == 3 * 21
    check_batch_and_logits(task)


# --- bad input -----------------------------------------------------------------------------


def test_unknown_task_and_options():
    with pytest.raises(ValueError, match=r"unknown task 'nope'; choose from \[.*'mnist'"):
        build_task("nope")
    with pytest.raises(TypeError, match=r"task 'mnist' has no option\(s\) \['colour'\]"):
        build_task("mnist", colour="red")
    with pytest.raises(TypeError, match=r"task 'text_file' needs option\(s\) \['data_path'\]"):
        build_task("text_file")


@pytest.mark.parametrize("name", ["text_file", "conll_file", "text_file_lm", "image_folder"])
def test_missing_data_path(tmp_path, name):
    missing = tmp_path / "nowhere" / "data.csv"
    with pytest.raises(FileNotFoundError, match=r"not found: .*nowhere"):
        build_task(name, data_path=str(missing))


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("label_noise", 1.0, r"label_noise .* must be in \[0, 1\); got 1.0"),
        ("label_noise", -0.1, r"label_noise .* must be in \[0, 1\); got -0.1"),
        ("imbalance", 0.5, r"imbalance .* must be >= 1; got 0.5"),
        ("few_shot", 0, r"few_shot .* >= 1; got 0"),
        ("few_shot", 500, r"few_shot=500 but class '\d' has only \d+ training examples"),
        ("test_size", 1800, r"test_size=1800 leaves no training examples"),
        ("train_size", 5000, r"train_size=5000 but only 1097 examples"),
        ("val_size", 1.5, r"val_size must be a count or a fraction in \(0, 1\)"),
        ("model", "vit", r"model must be one of \('cnn', 'mlp'\); got 'vit'"),
    ],
)
def test_bad_image_options(option, value, message):
    with pytest.raises(ValueError, match=message):
        build_task("digits", **{option: value})


def test_class_in_test_but_not_in_train():
    with pytest.raises(
        ValueError, match=r"class\(es\) \[.*\] appear in the (val|test) set but not in the training set"
    ):
        build_task("digits", train_size=5)


@pytest.mark.parametrize(
    ("file_name", "content", "options", "message"),
    [
        (
            "bad.csv",
            "text,label\nfine,a\ntoo,many,fields\n",
            {},
            r"bad.csv line 3: expected 2 fields \(text,label\), got 3",
        ),
        ("bad.csv", "text,label\nfine,a\nempty,\n", {}, r"bad.csv line 3: empty 'label'"),
        ("bad.csv", 'text,label\n"two\nlines",a\nbad,row,here\n', {}, r"bad.csv line 4: expected 2 fields"),
        ("bad.csv", "text,y\nfine,a\n", {}, r"bad.csv: no column\(s\) \['label'\]; the header row has \['text', 'y'\]"),
        ("bad.csv", "", {}, r"bad.csv: empty file"),
        ("bad.jsonl", '{"text": "a", "label": 1}\n{"text": "b", label: 2}\n', {}, r"bad.jsonl line 2: not valid JSON"),
        (
            "bad.jsonl",
            '{"text": "a", "y": 1}\n',
            {},
            r"bad.jsonl line 1: no key\(s\) \['label'\]; the keys are \['text', 'y'\]",
        ),
        ("bad.jsonl", '["a", 1]\n', {}, r"bad.jsonl line 1: expected a JSON object"),
        ("bad.xlsx", "x", {}, r"bad.xlsx: unknown file type '.xlsx'"),
        (
            "bad.csv",
            "text,label\nfine,a\nother,zzz\n",
            {"labels": ["a"]},
            r"bad.csv line 3: label 'zzz' is not among the labels given \['a'\]",
        ),
    ],
)
def test_bad_text_files(tmp_path, file_name, content, options, message):
    path = tmp_path / file_name
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        build_task("text_file", data_path=str(path), **options)


def test_bad_encoding_names_line_and_fix(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\nok,a\ncaf\xe9,b\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.csv line 3: not valid utf-8 text .* encoding='latin-1'"):
        build_task("text_file", data_path=str(path))


def test_unknown_label_in_val_file(tmp_path):
    train = write_csv(tmp_path / "train.csv", sentiment_rows(3))
    val = write_csv(tmp_path / "val.csv", ["fine,pos", "strange,surprise"])
    with pytest.raises(
        ValueError, match=r"val.csv line 3: label 'surprise' is not among the training labels \['neg', 'neu', 'pos'\]"
    ):
        build_task("text_file", data_path=str(train), val_path=str(val))


def test_bad_conll_files(tmp_path):
    bad = tmp_path / "ner.txt"
    bad.write_text("Paris\tB-geo-loc\nis\tO\n\nlonely-token\n")
    with pytest.raises(
        ValueError, match=r"ner.txt line 4: expected 'token<TAB>tag' \(or 'token tag'\), got 'lonely-token'"
    ):
        build_task("conll_file", data_path=str(bad))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ValueError, match=r"empty.txt: no sentences"):
        build_task("conll_file", data_path=str(empty))
    train = tmp_path / "train.txt"
    train.write_text(CONLL * 3)
    test = tmp_path / "test.txt"
    test.write_text("Paris\tB-geo-loc\nGoogle\tB-company\n")
    with pytest.raises(ValueError, match=r"test.txt line 2: tag 'B-company' is not among the training tags"):
        build_task("conll_file", data_path=str(train), test_path=str(test))


def test_bad_image_folders(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"flat has no class sub-folders .*'a.png'.* move them into class folders"):
        build_task("image_folder", data_path=str(flat))
    hollow = write_images(tmp_path / "hollow", ["cat"], 3)
    (hollow / "dog").mkdir()
    (hollow / "dog" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"class folder .*dog has no images"):
        build_task("image_folder", data_path=str(hollow))
    good = write_images(tmp_path / "good", ["cat", "dog"], 5)
    stray = write_images(tmp_path / "stray", ["cat", "fox"], 1)
    with pytest.raises(
        ValueError,
        match=r"class folder 'fox' in .*stray is not a training class; the training classes are \['cat', 'dog'\]",
    ):
        build_task("image_folder", data_path=str(good), test_path=str(stray))
    broken = write_images(tmp_path / "broken", ["cat", "dog"], 3)
    (broken / "dog" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*x.png"):
        build_task("image_folder", data_path=str(broken))
    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="image folder expected, got a file"):
        build_task("image_folder", data_path=str(a_file))


def test_bad_text_model_options(tmp_path):
    path = write_csv(tmp_path / "data.csv", sentiment_rows(3))
    with pytest.raises(ValueError, match=r"max_length=1000 exceeds the 512 tokens"):
        build_task("text_file", data_path=str(path), max_length=1000)
    conll = tmp_path / "train.txt"
    conll.write_text(CONLL * 5)
    with pytest.raises(ValueError, match=r"max_length must be an integer >= 3 tokens; got 1"):
        build_task("conll_file", data_path=str(conll), max_length=1)
    with pytest.raises(FileNotFoundError, match=r"model_path not found: .*no-model"):
        build_task("text_file", data_path=str(path), model_path=str(tmp_path / "no-model"))


def test_bad_lm_options():
    with pytest.raises(ValueError, match=r"vocab_size must be an integer >= 5"):
        build_task("tweets_lm", vocab_size=3, **TINY)
    with pytest.raises(ValueError, match=r"level must be one of \('word', 'char'\); got 'byte'"):
        build_task("tweets_lm", level="byte", **TINY)


def test_task_record_validates_itself(mnist):
    with pytest.raises(ValueError, match="task kind must be one of"):
        Task(
            name="x",
            kind="video",
            train=mnist.train,
            val=mnist.val,
            test=mnist.test,
            num_classes=10,
            class_names=mnist.class_names,
            build_model=mnist.build_model,
            defaults=mnist.defaults,
        )
    with pytest.raises(ValueError, match="3 class names for num_classes=10"):
        Task(
            name="x",
            kind="image",
            train=mnist.train,
            val=mnist.val,
            test=mnist.test,
            num_classes=10,
            class_names=["a", "b", "c"],
            build_model=mnist.build_model,
            defaults=mnist.defaults,
        )
