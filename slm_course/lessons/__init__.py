"""What the notebooks use beside the package proper: the shared demo run and the training plots.

Nothing in ``slm_course`` outside this subpackage imports it; it may import everything else.
"""
