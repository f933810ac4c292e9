"""Tasks: real data sets that work offline, loaders for your own files, and small models.

    from complement.experiments.tasks import build_task, available_tasks
    task = build_task("mnist", seed=0, label_noise=0.2)
    loader = DataLoader(task.train, batch_size=task.defaults["batch_size"], shuffle=True,
                        collate_fn=task.collate_fn)
    model = task.build_model()            # seed first with torch.manual_seed
    inputs, target = next(iter(loader))
    logits = model(inputs)                # class-last: (N, K) or (N, L, K)

``available_tasks()`` lists the tasks (``complement list``): image (``mnist`` and its
variants, ``digits``, ``fashion_mnist``, ``cifar10``, ``image_folder``), text (``tweets``,
``movie_reviews``, ``bbc_news``, ``text_file``; ``*_frozen``: frozen-encoder embeddings and
an MLP head, kind image), token (``ner``, ``conll_file``) and lm (``tweets_lm``,
``text_file_lm``). ``task_card(name)`` gives a task's data card: what the data is, its
source, licence, default split sizes and hyper-parameters (all of them: ``docs/data.md``).
``task_options(name)`` lists a task's options with their defaults. The data and model
packages are imported only when a task that needs them is built.
"""

# importing the modules registers their tasks, in this order (the order `complement list` shows)
from . import images, cifar, fashion, text, reviews, news, tokens, next_token  # noqa: F401, I001
from .base import (
    IGNORE_INDEX,
    KINDS,
    Task,
    available_tasks,
    build_task,
    register_preset,
    register_task,
    task_card,
    task_options,
)
from .cards import DataCard, cards_table

__all__ = [
    "IGNORE_INDEX",
    "KINDS",
    "DataCard",
    "Task",
    "available_tasks",
    "build_task",
    "cards_table",
    "register_preset",
    "register_task",
    "task_card",
    "task_options",
]
