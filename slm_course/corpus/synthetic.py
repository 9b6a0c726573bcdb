"""An embedded, seeded generator of TinyStories-style stories: the course's offline corpus.

The real TinyStories (Eldan & Li, 2023) lives on the Hugging Face hub. A learner who is offline,
and every test here, still needs stories a small GPT can learn to continue, so this module writes
them: a named character in a place with a thing they love, a problem, some dialogue and a
resolution, from a few dozen plot shapes filled in at random. This is the engine (drawing a scene,
picking a plot, streaming stories from a seed); the words and the plots themselves are in
``slm_course.corpus.synthetic_templates``.

It is NOT real TinyStories, and ``slm_course.corpus.load_tinystories`` labels it so wherever it is
used. The same seed always gives the same stories, and ``generate_stories(n, seed)`` is a prefix of
``generate_stories(n + k, seed)``, so a lesson's numbers repeat from run to run.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
from collections.abc import Iterator
from pathlib import Path

from slm_course.corpus import synthetic_templates
from slm_course.corpus.synthetic_templates import (
    ANIMALS,
    BOYS,
    FOODS,
    GIRLS,
    GROWN_UPS,
    LOOKS,
    PET_NAMES,
    PLACES,
    PLOTS,
    TOYS,
    Character,
    Scene,
    Thing,
)

_PLOT_NAMES = tuple(PLOTS)


def _character(rng: random.Random, avoid: str = "") -> Character:
    """A child three times in four, otherwise an animal; never named ``avoid``."""
    while True:
        roll = rng.random()
        look = rng.choice(LOOKS)
        if roll < 0.375:
            c = Character(rng.choice(GIRLS), "girl", look, "she", "her", "her")
        elif roll < 0.75:
            c = Character(rng.choice(BOYS), "boy", look, "he", "his", "him")
        else:
            he = rng.choice(("he", "she"))
            his, him = ("his", "him") if he == "he" else ("her", "her")
            c = Character(rng.choice(PET_NAMES), rng.choice(ANIMALS), look, he, his, him)
        if c.name != avoid:
            return c


def draw_scene(rng: random.Random) -> Scene:
    """The cast and props of one story: a hero, a friend with another name, a grown-up, a place,
    a toy and a food, drawn from ``rng`` in that order (the order fixes which stories a seed gives)."""
    hero = _character(rng)
    friend = _character(rng, avoid=hero.name)
    grown_up, pronoun = rng.choice(GROWN_UPS)
    place, preposition = rng.choice(PLACES)
    noun, adjectives = rng.choice(TOYS)
    toy = Thing(noun, rng.choice(adjectives))
    food = rng.choice(FOODS)
    return Scene(rng, hero, friend, grown_up, pronoun, place, f"{preposition} {place}", toy, food)


def write_story(rng: random.Random, plot: str | None = None) -> str:
    """One story (paragraphs separated by a newline) drawn from ``rng``; ``plot`` picks the shape."""
    if plot is None:
        plot = rng.choice(_PLOT_NAMES)
    elif plot not in PLOTS:
        raise ValueError(f"unknown plot {plot!r}; choose one of {sorted(PLOTS)}")
    return "\n".join(PLOTS[plot](draw_scene(rng)))


def iter_stories(seed: int = 0) -> Iterator[str]:
    """An endless stream of stories; its first ``n`` are ``generate_stories(n, seed)``."""
    rng = random.Random(seed)
    while True:
        yield write_story(rng)


def generate_stories(n: int, seed: int = 0) -> list[str]:
    """``n`` synthetic TinyStories-style stories, the same ones for the same ``seed``."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative number of stories, got {n!r}")
    return list(itertools.islice(iter_stories(seed), n))


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A sha256 of this engine's and its templates' source: it changes exactly when the stories a
    seed gives can change, so a cache of generated stories can be keyed on it without generating them.

    Example: ``code_fingerprint()`` -> ``"3f1c..."`` (64 hex digits; the same on every machine for one version)
    """
    digest = hashlib.sha256()
    for module_file in (__file__, synthetic_templates.__file__):
        digest.update(Path(module_file).read_bytes())
    return digest.hexdigest()
