"""The embedded corpus: deterministic, varied, and shaped like TinyStories."""

from __future__ import annotations

import collections
import hashlib
import random
import re

import pytest

from slm_course.corpus import load_tinystories, synthetic, synthetic_templates
from slm_course.data import bpe_sample
from slm_course.tokenizer import BPETokenizer

NAMES = set(synthetic_templates.GIRLS) | set(synthetic_templates.BOYS) | set(synthetic_templates.PET_NAMES)
PLOTS = synthetic_templates.PLOTS


@pytest.fixture(scope="module")
def stories() -> list[str]:
    return synthetic.generate_stories(3000, seed=7)


def test_same_seed_same_stories_and_longer_runs_extend_shorter_ones():
    assert synthetic.generate_stories(200, seed=3) == synthetic.generate_stories(200, seed=3)
    assert synthetic.generate_stories(300, seed=3)[:200] == synthetic.generate_stories(200, seed=3)
    other = synthetic.generate_stories(200, seed=4)
    assert len(set(other) & set(synthetic.generate_stories(200, seed=3))) < 10


def test_stories_are_the_ones_lessons_were_written_against():
    """The same stories on every machine and Python version. If you edit a plot or a word list on
    purpose, the lessons' printed numbers change too: re-run them, then update this digest."""
    digest = hashlib.sha256("\0".join(synthetic.generate_stories(5000, seed=7)).encode()).hexdigest()
    assert digest == "76dc959fe5a29d3e5b479887f44b198fd7d38dbf7f1217206ce418123da22ef1"


def test_the_embedded_corpus_trains_the_main_jobs_4096_token_bpe():
    """cpu-quick's bpe-4096 learns from the first BPE_SAMPLE_BYTES of the training split; offline,
    that is this corpus, which must offer every merge (names, places and props supply most)."""
    sample = bpe_sample(load_tinystories("train", "synthetic"))
    assert BPETokenizer.train(sample, 4096).vocab_size == 4096


def test_code_fingerprint_names_the_generator_version():
    fingerprint = synthetic.code_fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint) and fingerprint == synthetic.code_fingerprint()


def test_vocabulary_has_at_least_300_words(stories):
    words = {w for story in stories for w in re.findall(r"[a-z]+", story.lower())}
    assert len(words) >= 300


def test_at_least_20_plot_shapes_and_generation_uses_every_one(monkeypatch):
    assert len(PLOTS) >= 20
    used = collections.Counter()
    for name, plot in list(PLOTS.items()):
        monkeypatch.setitem(PLOTS, name, lambda s, name=name, plot=plot: used.update([name]) or plot(s))
    synthetic.generate_stories(2000, seed=1)
    assert set(used) == set(PLOTS)
    assert max(used.values()) < 2000 * 3 / len(PLOTS)  # no shape dominates


def test_plot_shapes_are_distinct_stories():
    """Each shape tells a different story: few of its sentences appear in any other shape."""
    sentences = {}
    for name in PLOTS:
        rng = random.Random(0)
        text = " ".join(synthetic.write_story(rng, name) for _ in range(20))
        sentences[name] = set(re.split(r"(?<=[.!?])\s+", re.sub(r"\b[A-Z][a-z]+\b", "X", text)))
    for name, own in sentences.items():
        others = set().union(*(s for n, s in sentences.items() if n != name))
        assert len(own - others) >= 5, f"plot {name!r} has almost no sentences of its own"


def test_every_story_has_dialogue_a_named_hero_and_a_beginning_middle_and_end(stories):
    for story in stories:
        paragraphs = story.split("\n")
        assert len(paragraphs) >= 4, story
        assert story.count('"') >= 2 and story.count('"') % 2 == 0, story
        hero = next(name for name in re.findall(r"\b[A-Z][a-z]+\b", story) if name in NAMES)
        assert story.count(hero) >= 3, story


def test_text_is_clean_simple_english(stories):
    for story in stories:
        assert not re.search(r"[{}]|  | \.|\.\.", story), story  # no template leftovers or stray spaces
        assert not re.search(r"[.!?] [a-z]", story), story  # sentences start with a capital
        assert not re.search(r"\ba [aeiou]|\ban [^aeiou]", story), story  # a/an agree
        assert story[-1] in '.!"', story
    sentences = [s for story in stories for s in re.split(r"(?<=[.!?])\s+", story)]
    assert sum(len(s.split()) for s in sentences) / len(sentences) < 12  # short, simple sentences


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="non-negative"):
        synthetic.generate_stories(-1)
    with pytest.raises(ValueError, match="unknown plot 'heist'"):
        synthetic.write_story(random.Random(0), "heist")
