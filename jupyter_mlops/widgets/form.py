"""The pipeline's parameters as typed inputs, prefilled from the parameters cell.

Numbers and flags get native inputs (IntText, FloatText, Checkbox), so they can't be typed
wrong; everything else is text that the core parses and checks exactly as it does
``-p NAME VALUE`` on the command line (``parameters.coerce``), and the whole set is then
resolved against the declared types (``parameters.resolve``), so the panel accepts what the
command accepts and says no in the same words.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from ..errors import BadInput
from ..parameters import Parameter, coerce, resolve
from .palette import ERROR_COLOR

JSON_TYPES = ("list", "dict", "any")


@dataclass
class ParameterField:
    """One parameter's input and the message shown under it when its value is refused."""

    parameter: Parameter
    input: widgets.ValueWidget
    problem: widgets.HTML
    initial_text: str | None = None  # text inputs: the prefilled text, which means the default

    def value(self) -> Any:
        """The value as typed (text parsed like `-p`). Raises BadInput naming the parameter."""
        raw = self.input.value
        if self.initial_text is None:
            return raw
        if raw == self.initial_text:
            return self.parameter.default  # exactly the default, whatever its text looked like
        if not raw.strip() and self.parameter.optional:
            return None
        return coerce(self.parameter.type, raw, self.parameter.name, from_text=True)

    def check(self) -> str | None:
        """Show this field's problem, if any, and return it."""
        try:
            resolve([self.parameter], {self.parameter.name: self.value()})
        except BadInput as error:
            self.problem.value = _problem_html(str(error))
            return str(error)
        self.problem.value = ""
        return None

    @property
    def edited(self) -> bool:
        """Whether the user changed the prefilled value."""
        if self.initial_text is None:
            return self.input.value != self.parameter.default
        return self.input.value != self.initial_text

    def same_kind(self, other: ParameterField) -> bool:
        return (self.parameter.type, self.parameter.optional) == (
            other.parameter.type,
            other.parameter.optional,
        )


class ParameterForm:
    """A grid of name, input and help per parameter; ``values()`` gives the checked values."""

    def __init__(self, parameters: list[Parameter], keep: ParameterForm | None = None) -> None:
        self.parameters = parameters
        self.fields = {p.name: _field(p) for p in parameters}
        if keep is not None:  # the notebook was re-read: what the user typed stays
            for name, field in self.fields.items():
                old = keep.fields.get(name)
                if old is None or not old.edited or not field.same_kind(old):
                    continue
                if isinstance(old.input, widgets.Dropdown):  # its value None is "no choice"
                    field.input.index = old.input.index
                else:
                    field.input.value = old.input.value
        cells: list[widgets.Widget] = []
        for field in self.fields.values():
            field.input.observe(lambda _change, field=field: field.check(), names="value")
            parameter = field.parameter
            cells += [
                widgets.Label(parameter.name, tooltip=f"{parameter.name}: {parameter.type}"),
                widgets.VBox([field.input, field.problem]),
                widgets.HTML(f'<span style="opacity:0.75">{html.escape(parameter.help)}</span>'),
            ]
        self.widget = widgets.GridBox(
            cells,
            layout=widgets.Layout(
                grid_template_columns="max-content max-content 1fr",
                grid_gap="2px 12px",
                align_items="center",
            ),
        )
        if not parameters:
            self.widget = widgets.HTML(
                "<i>no parameters: tag a cell <code>parameters</code> to make some</i>"
            )

    @property
    def inputs(self) -> dict[str, widgets.ValueWidget]:
        return {name: field.input for name, field in self.fields.items()}

    def values(self) -> dict[str, Any]:
        """Every parameter's checked value. Raises BadInput naming the first bad one."""
        problems = [problem for field in self.fields.values() if (problem := field.check())]
        if problems:
            raise BadInput(problems[0])
        return resolve(self.parameters, {n: f.value() for n, f in self.fields.items()})


def _field(parameter: Parameter) -> ParameterField:
    kind, default, problem = parameter.type, parameter.default, widgets.HTML()
    short = widgets.Layout(width="10em")
    if kind == "bool":
        if parameter.optional:
            choices = [None, True, False]  # set by index: a Dropdown's value None means "none"
            options = [(str(c), c) for c in choices]
            choice = widgets.Dropdown(options=options, index=choices.index(default), layout=short)
            return ParameterField(parameter, choice, problem)
        return ParameterField(parameter, widgets.Checkbox(value=default, indent=False), problem)
    if kind == "int" and not parameter.optional:
        return ParameterField(parameter, widgets.IntText(value=default, layout=short), problem)
    if kind == "float" and not parameter.optional:
        return ParameterField(parameter, widgets.FloatText(value=default, layout=short), problem)
    text = _as_text(default)
    box: widgets.ValueWidget
    if kind in JSON_TYPES or "\n" in text:
        box = widgets.Textarea(
            value=text,
            rows=max(2, min(8, text.count("\n") + 1)),
            placeholder="None" if parameter.optional else "",
            layout=widgets.Layout(width="24em"),
        )
    else:
        box = widgets.Text(value=text, placeholder="None", layout=widgets.Layout(width="18em"))
    return ParameterField(parameter, box, problem, initial_text=text)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):  # a tuple of sets and such: Python's spelling it is
        return repr(value)


def _problem_html(message: str) -> str:
    return f'<span style="color:{ERROR_COLOR}">{html.escape(message)}</span>'
