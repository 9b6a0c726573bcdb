"""slm_course: the finished, tested pieces that the lessons in ``notebooks/`` build by hand.

One concept per module: ``config`` (model sizes), ``runtime`` (device, profile, cache),
``tokenizer``, ``data``, ``model``, ``train``, ``sample``, ``viz``, ``widgets``, ``exercises``.
"""

__version__ = "0.1.0"
