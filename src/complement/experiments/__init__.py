"""The experiment harness: what ``complement compare`` runs, on top of the library.

- :mod:`.tasks`: data sets that work offline, readers for your own files, and small models.
- :mod:`.runs`: one run of a task with a method (settings, status, checkpoints), and the
  comparison engine that runs every method over paired seeds.
- :mod:`.report`: paired statistics, tables, figures and ``report.md``.
- :mod:`.cli`: the ``complement`` command, which parses its arguments and calls the above.

The library (:mod:`complement.losses`, :mod:`complement.training`, ...) never imports
this package; it needs the ``cli`` extra (``pip install "complement[cli]"``).
"""
