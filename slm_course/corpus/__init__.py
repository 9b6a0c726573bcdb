"""Stories to train on: local copies, the Hugging Face hub, and the embedded synthetic corpus.

``sources`` finds a split and streams it (``open_stories``) or lists it (``load_tinystories``);
``synthetic`` generates the offline corpus from the prose in ``synthetic_templates``.
"""

from slm_course.corpus.sources import SYNTHETIC_SOURCE, Stories, StorySource, load_tinystories, open_stories

__all__ = ["SYNTHETIC_SOURCE", "Stories", "StorySource", "load_tinystories", "open_stories"]
