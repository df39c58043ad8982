"""`ModelRequest.with_model` is `dataclasses.replace(request, model=…)`, written out."""

from __future__ import annotations

from dataclasses import fields, replace

from staffer.models import Message, ModelRequest, ToolSpec


def test_with_model_keeps_every_other_field() -> None:
    request = ModelRequest(
        messages=[Message("user", "hi")],
        tools=[ToolSpec("t", "a tool", {"type": "object"})],
        model="fast",
        max_tokens=7,
        temperature=0.5,
        metadata={"user": "ann"},
    )
    changed = request.with_model(None)
    assert changed == replace(request, model=None)
    # A field added to ModelRequest without updating with_model fails here.
    for f in fields(ModelRequest):
        if f.name != "model":
            assert getattr(changed, f.name) is getattr(request, f.name), f.name
    assert changed.model is None
    assert request.model == "fast"
