"""slm_course: the finished, tested pieces that the lessons in ``notebooks/`` build by hand.

One concept per module, in layers that import only downwards (``tests/test_layering.py``):
``config``, ``runtime``, ``fileio``, ``bpe_train``/``tokenizer``, ``model``, ``corpus``, ``data``,
``checkpoint``, ``sample``, ``presets``/``optim``/``distributed``/``trainer``, ``train`` (the CLI),
``export``, and ``lessons`` (what only the notebooks use).
"""

__version__ = "0.1.0"
