"""The widgets as Python objects: each builds, and changing its controls runs the callbacks.

No browser and no kernel here: ipywidgets fires observers and ``Button.click`` handlers in plain
Python, so we set values the way the frontend would and read back what the widgets show.
(tests/test_browser.py checks the same widgets in a real JupyterLab.)
"""

from __future__ import annotations

import base64
import html
import re

import ipywidgets as widgets
import pytest
import torch

from slm_course.config import GPTConfig
from slm_course.model import GPT
from slm_course.tokenizer import BPETokenizer, gpt2_encoding
from slm_course.lessons.widgets import attention_explorer, sampling_playground, tokenizer_explorer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TEXT = "Once upon a time there was a little girl named Lily."


def find(root: widgets.Widget, *, description: str | None = None, css: str | None = None) -> widgets.Widget:
    """The one widget under ``root`` with this description or CSS class."""
    found = []
    stack = [root]
    while stack:
        w = stack.pop()
        stack.extend(getattr(w, "children", ()))
        if (description is not None and getattr(w, "description", None) == description) or (
            css is not None and css in w._dom_classes
        ):
            found.append(w)
    assert len(found) == 1, f"expected one widget with description={description!r} css={css!r}, got {found}"
    return found[0]


@pytest.fixture(scope="module")
def encoding():
    return gpt2_encoding()


@pytest.fixture(scope="module")
def model() -> GPT:
    """Untrained, but with GPT-2's vocabulary so that real GPT-2 token ids go in."""
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=50257, block_size=32, n_layer=2, n_head=3, n_embd=48, dropout=0.1)).eval()


def png(image: widgets.Image) -> bytes:
    """The image's bytes (ipywidgets hands them back as a memoryview), checked to be a PNG."""
    data = bytes(image.value)
    assert data.startswith(PNG_MAGIC), "the widget should show a PNG"
    return data


class CharTokenizer:
    """One token per character: a second, very different tokenizer for the explorer."""

    def encode(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(chr(i) for i in ids)


# --- attention explorer ---------------------------------------------------------------------------


def test_attention_explorer_redraws_for_every_layer_and_head(model, encoding):
    box = attention_explorer(model, encoding, TEXT)
    assert "slm-attention-explorer" in box._dom_classes
    layer, head = find(box, description="layer"), find(box, description="head")
    heatmap = find(box, css="slm-attention-heatmap")
    assert isinstance(heatmap, widgets.Image)
    assert list(layer.options) == [0, 1] and list(head.options) == [0, 1, 2]

    images = {}
    for l in layer.options:
        layer.value = l
        for h in head.options:
            head.value = h
            images[l, h] = png(heatmap)
    assert len(set(images.values())) == 6, "every (layer, head) should draw a different map"
    layer.value, head.value = 0, 0
    assert png(heatmap) == images[0, 0], "drawing is deterministic: back to (0, 0) gives its image again"


def test_attention_explorer_leaves_training_mode_alone(model, encoding):
    model.train()
    try:
        attention_explorer(model, encoding, TEXT)
        assert model.training
    finally:
        model.eval()


@pytest.mark.parametrize(
    "text, message",
    [("", "needs some text"), ("word " * 40, "block_size=32")],
)
def test_attention_explorer_rejects_text_it_cannot_show(model, encoding, text, message):
    with pytest.raises(ValueError, match=message):
        attention_explorer(model, encoding, text)


def test_attention_explorer_names_a_token_outside_the_vocabulary(encoding):
    small = GPT(GPTConfig.tiny(vocab_size=256))  # GPT-2 ids of "Once upon a time" are all > 255
    with pytest.raises(ValueError, match="outside the vocabulary"):
        attention_explorer(small, encoding, "Once upon a time")


# --- sampling playground --------------------------------------------------------------------------


def sample_text(box: widgets.Widget, seed: int) -> str:
    find(box, description="seed").value = seed
    find(box, description="Generate").click()
    shown = find(box, css="slm-sample-output").value
    assert "generating" not in shown
    return html.unescape(re.sub(r"<[^>]+>", "", shown))


def test_playground_generates_repeatably_per_seed(model, encoding):
    box = sampling_playground(model, encoding, prompt="Once upon a time", max_new_tokens=6)
    assert "slm-sampling-playground" in box._dom_classes
    opened_with = html.unescape(re.sub(r"<[^>]+>", "", find(box, css="slm-sample-output").value))
    assert "6 new tokens" in opened_with, "the playground opens with a story, not an empty box"
    assert opened_with == sample_text(box, 0), "the opening story is seed 0's"
    first, second, again = sample_text(box, 1), sample_text(box, 2), sample_text(box, 1)
    assert first.startswith("Once upon a time") and len(first) > len("Once upon a time")
    assert "6 new tokens" in first
    assert first != second, "two seeds should give two different samples"
    assert first == again, "the same seed and settings should give the same sample"


def test_playground_passes_the_sliders_to_the_sampler(model, encoding):
    box = sampling_playground(model, encoding, max_new_tokens=4)
    assert sample_text(box, 1) != sample_text(box, 2)
    find(box, description="top-k").value = 1  # only the most likely token is left: the seed can't matter
    greedy = sample_text(box, 1)
    assert greedy == sample_text(box, 2)
    find(box, description="top-k").value = 0
    find(box, description="temperature").value = 0.0  # greedy decoding by another road
    assert sample_text(box, 3) == greedy
    find(box, description="new tokens").value = 3
    assert "3 new tokens" in sample_text(box, 3)


@pytest.mark.parametrize("knob, value", [("temperature", 0.3), ("top-k", 5), ("top-p", 0.5), ("prompt", "The dog")])
def test_playground_chart_follows_every_knob(model, encoding, knob, value):
    box = sampling_playground(model, encoding)
    chart = find(box, css="slm-next-token-chart")
    before = png(chart)
    find(box, description=knob).value = value
    assert png(chart) != before


def test_playground_starts_an_empty_prompt_from_endoftext(model, encoding):
    box = sampling_playground(model, encoding, max_new_tokens=3)
    find(box, description="prompt").value = ""
    assert find(box, css="slm-next-token-chart").layout.display is None
    assert "3 new tokens" in sample_text(box, 0)


def test_playground_asks_for_a_prompt_without_endoftext(model):
    box = sampling_playground(model, CharTokenizer(), prompt="", max_new_tokens=3)
    assert find(box, css="slm-next-token-chart").layout.display == "none"
    find(box, description="Generate").click()
    assert "Type a prompt first" in find(box, css="slm-sample-output").value
    find(box, description="prompt").value = "Tom"
    assert find(box, css="slm-next-token-chart").layout.display is None
    assert sample_text(box, 0).startswith("Tom")


def test_playground_shows_model_errors_in_the_widget(encoding):
    small = GPT(GPTConfig.tiny(vocab_size=256))
    box = sampling_playground(small, encoding, prompt="Once upon a time")
    shown = find(box, css="slm-sample-output").value
    assert "token id" in shown and "outside the vocabulary" in shown


# --- tokenizer explorer ---------------------------------------------------------------------------


def token_views(box: widgets.Widget) -> list[str]:
    views = []
    stack = [box]
    while stack:
        w = stack.pop(0)
        stack.extend(getattr(w, "children", ()))
        if "slm-token-view" in w._dom_classes:
            views.append(w.value)
    return views


def shown_tokens(view: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<span title="token id \d+"[^>]*>(.*?)</span>', view, re.S)]


def test_tokenizer_explorer_counts_and_colours_tokens(encoding):
    box = tokenizer_explorer({"GPT-2": encoding, "characters": CharTokenizer()}, text="Once upon a time")
    assert "slm-tokenizer-explorer" in box._dom_classes
    gpt2_view, char_view = token_views(box)
    assert "GPT-2" in gpt2_view and "4 tokens" in gpt2_view
    assert shown_tokens(gpt2_view) == ["Once", " upon", " a", " time"]
    assert "16 tokens" in char_view and len(shown_tokens(char_view)) == 16

    find(box, description="text").value = "Tom & <Lily>\nplay"
    gpt2_view, char_view = token_views(box)
    ids = encoding.encode("Tom & <Lily>\nplay")
    assert f"{len(ids)} tokens" in gpt2_view
    assert "".join(shown_tokens(gpt2_view)) == "Tom & <Lily>\nplay", "tokens escaped and joined give the text back"
    assert "17 tokens" in char_view


def test_tokenizer_explorer_names_a_list_by_encoding_name(encoding):
    box = tokenizer_explorer([encoding], text="a")
    (view,) = token_views(box)
    assert "<b>gpt2</b>" in view and "1 token<" in view


def test_tokenizer_explorer_needs_a_tokenizer():
    with pytest.raises(ValueError, match="at least one tokenizer"):
        tokenizer_explorer([])


def test_tokenizer_explorer_shows_endoftext_as_one_token(encoding):
    bpe = BPETokenizer.train("Tom and Lily play. " * 20, vocab_size=270)
    box = tokenizer_explorer({"GPT-2": encoding, "our BPE": bpe}, text="The end.<|endoftext|>Tom")
    for view in token_views(box):
        assert "<|endoftext|>" in shown_tokens(view), "the story boundary is a single special token"


# --- static fallbacks: what GitHub and other widget-less viewers draw ----------------------------


def bundle(box: widgets.Widget) -> dict:
    """What the notebook stores for the displayed widget: the live view and its fallbacks."""
    data = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data, "the live widget is still there"
    return data


def test_attention_explorer_falls_back_to_the_heatmap_it_shows(model, encoding):
    box = attention_explorer(model, encoding, TEXT)
    find(box, description="head").value = 2
    data = bundle(box)
    assert base64.b64decode(data["image/png"]) == png(find(box, css="slm-attention-heatmap"))
    assert "layer 0, head 2" in data["text/plain"]


def test_playground_falls_back_to_its_story_and_chart(model, encoding):
    box = sampling_playground(model, encoding, prompt="Once upon a time", max_new_tokens=5)
    story = sample_text(box, 3)
    data = bundle(box)
    assert "".join(story.split()) in "".join(data["text/plain"].split()) and "seed 3" in data["text/plain"]
    assert find(box, css="slm-sample-output").value in data["text/html"]
    chart = base64.b64encode(png(find(box, css="slm-next-token-chart"))).decode("ascii")
    assert chart in data["text/html"]


def test_tokenizer_explorer_falls_back_to_its_tokens(encoding):
    box = tokenizer_explorer({"GPT-2": encoding, "characters": CharTokenizer()}, text="Once upon\na")
    data = bundle(box)
    assert "GPT-2 (4 tokens): |Once| upon|\\n|a|" in data["text/plain"]
    assert "characters (11 tokens)" in data["text/plain"]
    assert all(view in data["text/html"] for view in token_views(box))
