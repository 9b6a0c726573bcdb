"""Interactive views of a GPT for JupyterLab: attention maps, a sampling playground, a tokenizer explorer.

Built from stock ipywidgets and matplotlib only, so they render in any JupyterLab with no
JavaScript build step. Plots are PNG bytes in an ``ipywidgets.Image``, re-rendered by Python on
every change, so what the learner sees is exactly what the callbacks computed.

Each function returns a container carrying a stable CSS class (``slm-attention-explorer``,
``slm-sampling-playground``, ``slm-tokenizer-explorer``); the lessons and the browser test find
the widgets and their parts by these classes and by the controls' descriptions.

Each container also offers a *static fallback* beside its live view: a picture or text of what it
shows at that moment, in the same output. JupyterLab draws the live widget; a viewer that can't run
widgets (GitHub, nbviewer, an untrusted notebook) draws the fallback, so a lesson read there still
shows the heatmap, the sample or the tokens.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import ipywidgets as widgets
import tiktoken
import torch
from matplotlib.figure import Figure

from slm_course import sample
from slm_course.lessons.style import HEATMAP_CMAP
from slm_course.model import GPT
from slm_course.runtime import eval_mode
from slm_course.sample import next_token_distribution
from slm_course.tokenizer import ENDOFTEXT, BPETokenizer

# Pastel backgrounds that tell neighbouring tokens apart without hiding the text on them.
_TOKEN_COLOURS = ("#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6")
_TOP_TOKENS_SHOWN = 10


class WidgetWithFallback(widgets.VBox):
    """A VBox whose output also carries a static view of it, for viewers that can't run widgets.

    ``fallback()`` returns extra MIME data (``image/png`` as base64 text, ``text/html``,
    ``text/plain``) describing what the widget shows when it is displayed. The notebook stores them
    in the same output as the widget; each viewer draws the richest kind it can.
    """

    def __init__(self, children: Sequence[widgets.Widget], fallback: Callable[[], dict[str, str]], **kwargs: Any) -> None:
        super().__init__(children, **kwargs)
        self._fallback = fallback

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle.update(self._fallback())
        return bundle


class Tokenizer(Protocol):
    """What the widgets need from a tokenizer: tiktoken's encodings and the course's BPE both fit."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


def attention_explorer(model: GPT, encoding: Tokenizer, text: str) -> widgets.VBox:
    """Heatmap of who attends to whom in ``text``, with buttons to pick the layer and the head.

    The weights of every layer and head are computed once (one forward pass); switching layer or
    head only redraws. Row t of a map is the distribution that token t puts over tokens 0..t.
    """
    ids = _encode(encoding, text)
    block_size = model.config.block_size
    if not ids:
        raise ValueError("attention_explorer needs some text to encode, e.g. 'Once upon a time'")
    if len(ids) > block_size:
        raise ValueError(
            f"the text is {len(ids)} tokens but the model sees at most GPTConfig.block_size="
            f"{block_size}; pass a shorter text"
        )
    with eval_mode(model):
        idx = torch.tensor([ids], dtype=torch.long, device=_device(model))
        maps = model.attention_weights(idx)[:, 0].float().cpu()  # (n_layer, n_head, T, T)
    labels = [_tick_label(encoding.decode([i])) for i in ids]

    layer = widgets.ToggleButtons(
        options=list(range(model.config.n_layer)), description="layer", style={"button_width": "3em"}
    )
    head = widgets.ToggleButtons(
        options=list(range(model.config.n_head)), description="head", style={"button_width": "3em"}
    )
    heatmap = widgets.Image(format="png")
    heatmap.add_class("slm-attention-heatmap")

    def render(_change: Any = None) -> None:
        title = f"layer {layer.value}, head {head.value}"
        heatmap.value = _attention_png(maps[layer.value, head.value], labels, title)

    def fallback() -> dict[str, str]:
        return {
            "image/png": base64.b64encode(bytes(heatmap.value)).decode("ascii"),
            "text/plain": f"attention explorer, layer {layer.value}, head {head.value} (a still picture: "
                          f"run the notebook to switch layer and head)",
        }

    layer.observe(render, names="value")
    head.observe(render, names="value")
    render()
    box = WidgetWithFallback([layer, head, heatmap], fallback, layout={"align_items": "flex-start"})  # images at their own size
    box.add_class("slm-attention-explorer")
    return box


def sampling_playground(
    model: GPT, encoding: Tokenizer, prompt: str = "Once upon a time", max_new_tokens: int = 60
) -> widgets.VBox:
    """A prompt, the sampling knobs, a Generate button, the sample, and the next-token distribution.

    The bar chart shows the distribution the *first* new token is drawn from, after temperature,
    top-k and top-p, so moving a slider shows its effect before anything is sampled. A fixed seed
    makes a sample repeatable: the same seed and settings give the same text. Temperature 0 is
    greedy decoding. An empty prompt starts a story from scratch, after ``<|endoftext|>``, when the
    tokenizer has that token (``eot_token``); sampling stops at it too. The playground opens with
    one sample already generated (seed 0), so it never shows an empty story.
    """
    vocab_size = model.config.vocab_size
    eot_token = _end_of_text(encoding)
    slider = {"continuous_update": False, "style": {"description_width": "7em"}}
    prompt_box = widgets.Textarea(
        value=prompt, description="prompt", continuous_update=False, style=slider["style"], layout={"width": "32em"}
    )
    temperature = widgets.FloatSlider(1.0, min=0.0, max=2.0, step=0.05, description="temperature", **slider)
    top_k = widgets.IntSlider(0, min=0, max=min(200, vocab_size), description="top-k", **slider)
    top_p = widgets.FloatSlider(1.0, min=0.05, max=1.0, step=0.05, description="top-p", **slider)
    length = widgets.IntSlider(max_new_tokens, min=1, max=256, description="new tokens", **slider)
    seed = widgets.IntText(0, description="seed", style=slider["style"])
    hint = widgets.HTML("<small>temperature 0 is greedy; top-k 0 and top-p 1.0 switch those filters off.</small>")
    button = widgets.Button(description="Generate", button_style="primary", icon="play")
    output = widgets.HTML()
    output.add_class("slm-sample-output")
    chart = widgets.Image(format="png")
    chart.add_class("slm-next-token-chart")

    def knobs() -> dict[str, Any]:
        return dict(
            temperature=temperature.value,
            top_k=top_k.value or None,
            top_p=top_p.value if top_p.value < 1.0 else None,
        )

    def prompt_ids() -> list[int]:
        return _encode(encoding, prompt_box.value) or ([eot_token] if eot_token is not None else [])

    @_errors_shown_in(output)
    def update_chart(_change: Any = None) -> None:
        ids = prompt_ids()
        chart.layout.display = None if ids else "none"  # no prompt, no next token to show
        if ids:
            idx = torch.tensor([ids], dtype=torch.long, device=_device(model))
            probs = next_token_distribution(model, idx, **knobs())[0].cpu()
            chart.value = _next_token_png(probs, encoding)

    @_errors_shown_in(output)
    def generate(_button: widgets.Button) -> None:
        ids = prompt_ids()
        if not ids:
            output.value = "<i>Type a prompt first: the model continues text, so it needs at least one token.</i>"
            return
        device = _device(model)
        generator = torch.Generator(device=device).manual_seed(seed.value)
        button.disabled = True
        output.value = "<i>generating…</i>"
        try:
            idx = torch.tensor([ids], dtype=torch.long, device=device)
            out = sample.generate(model, idx, length.value, **knobs(), stop_token=eot_token, generator=generator)
        finally:
            button.disabled = False
        new_ids = out[0, len(ids) :].tolist()  # a story that ends shows its <|endoftext|>
        output.value = _sample_html(prompt_box.value, encoding.decode(new_ids), len(new_ids))

    def fallback() -> dict[str, str]:
        settings = (f"temperature {temperature.value:g}, top-k {top_k.value or 'off'}, "
                    f"top-p {top_p.value if top_p.value < 1.0 else 'off'}, seed {seed.value}")
        sample_text = html.unescape(_strip_tags(output.value.replace("</div>", "</div>\n")))
        picture = ""
        if chart.value and chart.layout.display != "none":
            encoded = base64.b64encode(bytes(chart.value)).decode("ascii")
            picture = f'<img src="data:image/png;base64,{encoded}" alt="next-token distribution">'
        return {
            "text/html": f"<div><b>sampling playground</b> ({html.escape(settings)}; a still copy: run the "
                         f"notebook to change the knobs)</div>{output.value}{picture}",
            "text/plain": f"sampling playground ({settings}):\n{sample_text}",
        }

    for control in (prompt_box, temperature, top_k, top_p):
        control.observe(update_chart, names="value")
    button.on_click(generate)
    update_chart()
    generate(button)  # open with a story, not an empty box
    controls = widgets.VBox([prompt_box, temperature, top_k, top_p, hint, length, seed, button])
    box = WidgetWithFallback([widgets.HBox([controls, chart]), output], fallback)
    box.add_class("slm-sampling-playground")
    return box


def tokenizer_explorer(
    encodings: Mapping[str, Tokenizer] | Sequence[Tokenizer],
    text: str = "Once upon a time, there was a little robot named Bolt.",
) -> widgets.VBox:
    """A text box, and for each tokenizer the text cut into coloured tokens and the token count.

    ``encodings`` maps display names to tokenizers; a plain list is named by each encoding's
    ``name`` attribute (tiktoken has one) or its position. Hover a token to see its id.
    """
    if isinstance(encodings, Mapping):
        named = dict(encodings)
    else:
        named = {getattr(enc, "name", f"tokenizer {i}"): enc for i, enc in enumerate(encodings)}
    if not named:
        raise ValueError("tokenizer_explorer needs at least one tokenizer, e.g. [gpt2_encoding()]")
    text_box = widgets.Textarea(value=text, description="text", layout={"width": "40em"})
    views = {name: widgets.HTML() for name in named}
    for view in views.values():
        view.add_class("slm-token-view")

    def render(_change: Any = None) -> None:
        for name, encoding in named.items():
            views[name].value = _tokens_html(name, encoding, _encode(encoding, text_box.value))

    def fallback() -> dict[str, str]:
        lines = []
        for name, encoding in named.items():
            ids = _encode(encoding, text_box.value)
            pieces = "|".join(encoding.decode([i]).replace("\n", "\\n") for i in ids)
            lines.append(f"{name} ({len(ids)} token{'' if len(ids) == 1 else 's'}): |{pieces}|")
        return {
            "text/html": "".join(view.value for view in views.values()),
            "text/plain": "\n".join(lines),
        }

    text_box.observe(render, names="value")
    render()
    box = WidgetWithFallback([text_box, *views.values()], fallback)
    box.add_class("slm-tokenizer-explorer")
    return box


def _encode(encoding: Tokenizer, text: str) -> list[int]:
    """Token ids of ``text``. tiktoken (and our BPETokenizer, which follows its rules) refuses text
    containing special tokens unless told they are allowed; TinyStories text contains
    ``<|endoftext|>``, so allow them."""
    if isinstance(encoding, (tiktoken.Encoding, BPETokenizer)):
        return encoding.encode(text, allowed_special="all")
    return list(encoding.encode(text))


def _end_of_text(encoding: Tokenizer) -> int | None:
    """The id of ``<|endoftext|>``, the boundary between stories, if the tokenizer has that token."""
    ids = _encode(encoding, ENDOFTEXT)
    return ids[0] if len(ids) == 1 else None


def _device(model: GPT) -> torch.device:
    return next(model.parameters()).device


def _errors_shown_in(output: widgets.HTML) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Show a callback's ValueError (e.g. a token id outside the model's vocabulary) in the widget:
    raised from a callback it would only reach JupyterLab's log console, where a learner won't look."""

    def decorate(callback: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(callback)
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except ValueError as error:
                output.value = f'<pre style="color:#b00020">{html.escape(str(error))}</pre>'

        return guarded

    return decorate


def _strip_tags(markup: str) -> str:
    """The text of a small piece of our own HTML (no nesting tricks: we wrote it)."""
    return re.sub(r"<[^>]+>", "", markup)


def _tick_label(token: str) -> str:
    """A token as an axis label: newlines would break the label, so show them escaped."""
    return token.replace("\n", "\\n")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # A token from a script the default font lacks is drawn as a box; a warning per redraw,
        # sent to JupyterLab's log console, would tell the learner nothing more.
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _attention_png(weights: torch.Tensor, labels: list[str], title: str) -> bytes:
    """One head's (T, T) attention map, queries down and keys across, tokens as tick labels."""
    T = len(labels)
    side = min(9.0, 2.5 + 0.25 * T)  # inches: room for the labels, but never a poster
    fontsize = max(4, min(10, int(0.5 * 72 * side / T)))  # points: about half a cell per label
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    image = ax.imshow(weights.numpy(), cmap=HEATMAP_CMAP, vmin=0.0, vmax=1.0)
    ax.set_xticks(range(T), labels, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(T), labels, fontsize=fontsize)
    ax.set_xlabel("attended-to token (key)")
    ax.set_ylabel("attending token (query)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="attention weight")
    return _png(fig)


def _next_token_png(probs: torch.Tensor, encoding: Tokenizer) -> bytes:
    """Horizontal bars for the most likely next tokens, most likely on top."""
    top = torch.topk(probs, min(_TOP_TOKENS_SHOWN, probs.numel()))
    labels = [repr(encoding.decode([i])) for i in top.indices.tolist()]  # repr shows the spaces
    possible = int((probs > 0).sum())
    fig = Figure(figsize=(4.5, 3.5))
    ax = fig.add_subplot()
    bars = ax.barh(range(len(labels)), top.values.numpy(), color="#4c72b0")
    ax.bar_label(bars, labels=[f"{p:.1%}" for p in top.values.tolist()], padding=3, fontsize=8)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("probability")
    ax.set_title(f"next token: {possible:,} possible", fontsize=10)
    return _png(fig)


def _sample_html(prompt: str, continuation: str, n_new: int) -> str:
    """The prompt in grey, then the sampled continuation, whitespace kept as generated."""
    return (
        f'<div style="white-space:pre-wrap; font-family:monospace; max-width:60em">'
        f'<span style="color:#777">{html.escape(prompt)}</span>{html.escape(continuation)}</div>'
        f"<small>{n_new} new token{'' if n_new == 1 else 's'}</small>"
    )


def _tokens_html(name: str, encoding: Tokenizer, ids: list[int]) -> str:
    """``ids`` as coloured spans (hover for the id), under a heading with the token count."""
    spans = "".join(
        f'<span title="token id {token_id}" style="background:{_TOKEN_COLOURS[n % len(_TOKEN_COLOURS)]}">'
        f"{html.escape(encoding.decode([token_id]))}</span>"
        for n, token_id in enumerate(ids)
    )
    count = f"{len(ids)} token{'' if len(ids) == 1 else 's'}"
    return (
        f'<div><b>{html.escape(name)}</b>: <span class="slm-token-count">{count}</span></div>'
        f'<div style="white-space:pre-wrap; font-family:monospace; line-height:1.9">{spans}</div>'
    )
