# ruff: noqa: F811 (the jupyter, browser, page and page_errors fixtures are imported)
"""The JupyterLab extension's rough edges, in a real `jupyter lab` driven in headless Chromium.

A right-click inside a cell's editor acts on that cell, not on whichever cell was active
before (a wrong tag is a change to her notebook she did not ask for), and the menu shows that
cell's state. Long stage and parameter names fit the sidebar in both themes: nothing is cut
or runs out sideways, before and after runs (one run, then one served from the cache), and
the status says "preparing" until the first stage reports.

Screenshots of the sidebar in the light and the dark theme are written to
`test-artifacts/ui/` (`polish-sidebar-light.png`, `polish-sidebar-dark.png`).
"""

from __future__ import annotations

import re
from typing import Any

import nbformat
import pytest
from browser import (  # noqa: F401
    JupyterLab,
    browser,
    jupyter,
    page,
    run_command,
)
from conftest import code, md, notebook, write
from test_ui import (  # noqa: F401
    SIDEBAR,
    UI_TIMEOUT,
    active_cell_index,
    cell,
    open_notebook_alone,
    open_sidebar,
    page_errors,
    prompt,
    save_with_keyboard,
    screenshot_sidebar,
    select_cell,
    stage_row,
    stage_statuses,
    wait_active_cell,
    wait_for_run_end,
)

pytestmark = pytest.mark.slow

LOAD = "load_the_raw_measurements_from_disk"
TRAIN = "train_logistic_regression_with_grid_search"
EVALUATE = "evaluate_on_the_held_out_measurements"
STAGES = [LOAD, TRAIN, EVALUATE]
PARAMETERS = ["n_estimators_for_the_random_forest", "fraction_of_the_rows_held_out_for_evaluation"]
MODEL = "classifier_of_the_long_named_measurements"
MARKDOWN, LAST = 4, 7  # "## Training", and the untagged code cell at the end
THEMES = {"light": "JupyterLab Light", "dark": "JupyterLab Dark"}

# Elements of the sidebar wider inside than their box: cut off, or with a scrollbar.
OVERFLOWING = """(root) => [...document.querySelectorAll(`${root}, ${root} *`)]
    .filter(e => e.scrollWidth > e.clientWidth + 1)
    .map(e => `<${e.tagName.toLowerCase()} class="${e.getAttribute('class') ?? ''}">`
        + ` ${e.scrollWidth} > ${e.clientWidth}: ${(e.textContent ?? '').slice(0, 80)}`)"""

# Stage names and statuses on the same line of a progress row must not overlap.
OVERLAPS = """(root) => [...document.querySelectorAll(`${root} .jp-mlops-progress-row`)]
    .flatMap(row => {
        const parts = ['.jp-mlops-stage-name', '.jp-mlops-progress-status',
                       '.jp-mlops-progress-duration']
            .map(s => row.querySelector(s).getBoundingClientRect());
        const hit = (a, b) => a.width > 0 && b.width > 0 && a.left < b.right - 0.5
            && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
        return hit(parts[0], parts[1]) || hit(parts[0], parts[2]) || hit(parts[1], parts[2])
            ? [row.dataset.stage] : [];
    })"""


def long_names() -> Any:
    """A small pipeline whose stage, parameter, metric and model names are all long; a
    markdown cell in the middle and an untagged code cell at the end."""
    return notebook(
        md("# A pipeline with long names"),
        code("import numpy as np", "setup"),
        code(
            f"{PARAMETERS[0]}: int = 200  # not used: a long name\n{PARAMETERS[1]}: float = 0.25",
            "parameters",
        ),
        code(
            "rng = np.random.default_rng(0)\n"
            "features = rng.normal(size=(80, 3))\n"
            "labels = (features[:, 0] > 0).astype(int)",
            f"stage:{LOAD}",
        ),
        md("## Training"),
        code(
            "from sklearn.linear_model import LogisticRegression\n"
            f"held_out = int(len(labels) * {PARAMETERS[1]})\n"
            "classifier = LogisticRegression().fit(features[held_out:], labels[held_out:])",
            f"stage:{TRAIN}",
            "model:classifier",
        ),
        code(
            "accuracy_on_the_held_out_rows = float(\n"
            "    (classifier.predict(features[:held_out]) == labels[:held_out]).mean()\n"
            ")",
            f"stage:{EVALUATE}",
            "metrics",
        ),
        code("print(accuracy_on_the_held_out_rows)"),
        pipeline="long-names-in-the-sidebar",
        model_name=MODEL,
    )


def open_long_names(page: Any, lab: JupyterLab, name: str) -> Any:
    """Write the notebook as `name`, open it alone with the sidebar; return the sidebar."""
    write(long_names(), lab.root / name)
    open_notebook_alone(page, lab, name)
    sidebar = open_sidebar(page)
    for stage in STAGES:
        stage_row(page, stage).wait_for(timeout=UI_TIMEOUT * 1000)
    return sidebar


def right_click_editor(page: Any, index: int) -> None:
    """Right-click inside cell `index`'s code editor (on its text), not on its prompt."""
    editor = cell(page, index).locator(".jp-InputArea-editor .cm-content")
    editor.click(button="right", position={"x": 40, "y": 6})


def pipeline_menu(page: Any) -> None:
    """In the open context menu, open the "ML Pipeline" submenu."""
    page.locator(".lm-Menu .lm-Menu-item", has_text="ML Pipeline").click()
    page.locator('.lm-Menu .lm-Menu-item[data-command="jupyter-mlops:toggle-skip"]').wait_for()


def menu_item(page: Any, command: str) -> Any:
    return page.locator(f'.lm-Menu .lm-Menu-item[data-command="{command}"]')


def close_menus(page: Any) -> None:
    while page.locator(".lm-Menu").count():
        page.keyboard.press("Escape")


def test_right_click_in_an_editor_tags_the_cell_under_the_pointer(
    jupyter: JupyterLab, page: Any, page_errors: list[str]
) -> None:
    """A markdown cell is active (with a code cell selected beside it); she right-clicks
    inside the editor of the last code cell and picks Skip: that cell, and only that cell,
    is skipped, and the menu then shows Skip checked for it."""
    open_long_names(page, jupyter, "right_click.ipynb")
    before = nbformat.read(jupyter.root / "right_click.ipynb", as_version=4)
    # A selection of two cells, the markdown one active.
    select_cell(page, MARKDOWN + 1)
    target, point = prompt(page, MARKDOWN)
    target.click(position=point, modifiers=["Shift"])
    wait_active_cell(page, MARKDOWN)
    assert (
        page.evaluate("() => window.jupyterapp.shell.currentWidget.content.activeCell.model.type")
        == "markdown"
    )

    right_click_editor(page, LAST)
    menu = page.locator(".lm-Menu").first
    labels = [text.strip() for text in menu.locator(".lm-Menu-itemLabel").all_inner_texts()]
    # Near the top of the menu, right after the first group (cut, copy, paste...).
    assert labels.index("ML Pipeline") < labels.index("Delete Cell") < 12, labels
    pipeline_menu(page)
    assert menu_item(page, "jupyter-mlops:toggle-skip").get_attribute("aria-checked") != "true"
    menu_item(page, "jupyter-mlops:toggle-skip").click()
    cell(page, LAST).locator('.jp-mlops-badge[data-role="skip"]').wait_for(
        timeout=UI_TIMEOUT * 1000
    )
    stage_row(page, EVALUATE).locator(f'.jp-mlops-cell-link[data-cell="{LAST}"]').wait_for(
        state="detached", timeout=UI_TIMEOUT * 1000
    )

    # Again, with the markdown cell active: the menu shows the state of the cell under the
    # pointer, not of the active cell.
    select_cell(page, MARKDOWN)
    right_click_editor(page, LAST)
    pipeline_menu(page)
    skip = menu_item(page, "jupyter-mlops:toggle-skip")
    assert skip.get_attribute("aria-checked") == "true"
    assert "lm-mod-toggled" in (skip.get_attribute("class") or "")
    assert menu_item(page, "jupyter-mlops:toggle-setup").get_attribute("aria-checked") != "true"
    close_menus(page)

    save_with_keyboard(page, LAST)
    saved = nbformat.read(jupyter.root / "right_click.ipynb", as_version=4)
    expected = [c.metadata.get("tags") for c in before.cells]
    expected[LAST] = ["skip"]
    assert [c.metadata.get("tags") for c in saved.cells] == expected
    assert page_errors == []


def test_long_names_fit_the_sidebar_in_both_themes(
    jupyter: JupyterLab, page: Any, page_errors: list[str], record_property: Any
) -> None:
    """Long stage, parameter, metric and model names: after a run and a second one served
    from the cache (statuses, cached notes, model URIs shown), nothing in the sidebar is cut
    or wider than its box, in the light and the dark theme. Until the first stage reports,
    the run says "preparing" and lists the stages."""
    page.set_viewport_size({"width": 1280, "height": 1800})  # the whole sidebar on screen
    sidebar = open_long_names(page, jupyter, "long_names.ipynb")
    assert_fits(page)

    # Nothing cut: the DAG's labels, the parameters' names, the cells' badges.
    for stage in STAGES:
        node = sidebar.locator(f'.jp-mlops-dag-node[data-stage="{stage}"] text')
        assert "".join(node.all_text_contents()) == stage
        badges = page.locator(f'.jp-Cell .jp-mlops-badge[data-stage="{stage}"]')
        assert set(badges.all_text_contents()) == {stage}
    for name in PARAMETERS:
        label = sidebar.locator(f'.jp-mlops-param[data-param="{name}"] .jp-mlops-param-name')
        assert label.text_content() == name

    # The statuses the run goes through, as the sidebar shows them.
    page.evaluate(
        """(root) => {
            window.mlopsSeen = [];
            const note = () => {
                const status = document.querySelector(`${root} [data-testid="mlops-run-status"]`);
                const rows = document.querySelectorAll(`${root} .jp-mlops-progress-row`);
                const seen = `${status?.textContent}: ${rows.length}`;
                if (status && window.mlopsSeen.at(-1) !== seen) window.mlopsSeen.push(seen);
            };
            new MutationObserver(note).observe(document.querySelector(root),
                {subtree: true, childList: true, characterData: true});
        }""",
        SIDEBAR,
    )
    productionize = sidebar.locator('[data-testid="mlops-productionize"]')
    productionize.click()
    assert wait_for_run_end(page, jupyter) == "succeeded", sidebar.inner_text()
    assert stage_statuses(page) == {stage: "done" for stage in STAGES}
    seen = page.evaluate("() => window.mlopsSeen")
    assert "preparing: 3" in seen and seen.index("preparing: 3") < seen.index("succeeded: 3"), seen
    assert_fits(page)

    productionize.click()  # the same again: every stage comes from the cache
    page.wait_for_function(
        "(root) => document.querySelector(`${root} [data-testid='mlops-run-status']`)"
        "?.dataset.status !== 'succeeded'",
        arg=SIDEBAR,
    )
    assert wait_for_run_end(page, jupyter) == "succeeded", sidebar.inner_text()
    assert stage_statuses(page) == {stage: "cached" for stage in STAGES}
    notes = sidebar.locator('[data-testid="mlops-stage-note"]')
    assert notes.count() == len(STAGES)
    for index in range(notes.count()):
        text, title = notes.nth(index).inner_text(), notes.nth(index).get_attribute("title")
        assert re.fullmatch(r"from MLflow run [0-9a-f]{8}", text), text
        # the tooltip has the whole id, which starts with the 8 digits shown
        assert re.fullmatch(r"outputs of MLflow run [0-9a-f]{32}", title or ""), title
        assert (title or "").startswith(f"outputs of MLflow run {text[-8:]}"), title
    model = sidebar.locator(f'[data-testid="mlops-model"][data-model="{MODEL}"]')
    assert f"models:/{MODEL}/1" in model.inner_text()

    fits_in_both_themes(page, "polish-sidebar", record_property)
    assert page_errors == []


def fits_in_both_themes(page: Any, name: str, record_property: Any) -> None:
    """In the light and the dark theme, the sidebar fits (`assert_fits`); screenshots of it
    as test-artifacts/ui/NAME-light.png and NAME-dark.png. The light theme again after."""
    for short, theme in THEMES.items():
        run_command(page, "apputils:change-theme", {"theme": theme})
        page.wait_for_function(
            "(theme) => document.body.dataset.jpThemeName === theme", arg=theme, timeout=30_000
        )
        page.wait_for_timeout(500)  # the theme's stylesheet applied
        assert_fits(page)
        screenshot_sidebar(page, f"{name}-{short}", record_property)
    run_command(page, "apputils:change-theme", {"theme": THEMES["light"]})


def assert_fits(page: Any) -> None:
    """No element of the sidebar is wider inside than its box; no name hides a status."""
    assert page.evaluate(OVERFLOWING, SIDEBAR) == []
    assert page.evaluate(OVERLAPS, SIDEBAR) == []


def test_opening_an_example_leaves_it_unmodified(jupyter: JupyterLab, page: Any) -> None:
    """The examples ship with the metadata JupyterLab fills in when their kernel starts, so
    opening one doesn't mark it modified (a save would then make a first Productionize record
    `git_dirty`)."""
    import shutil

    from conftest import EXAMPLES

    for name in ("wine_classifier.ipynb", "kale_digits_fanout.ipynb"):
        shutil.copy(EXAMPLES / name, jupyter.root / name)
        open_notebook_alone(page, jupyter, name)
        # Once the kernel's info has arrived, JupyterLab has written its language_info into
        # the notebook (a callback on the same promise, registered before this one).
        dirty = page.evaluate(
            """async () => {
                const widget = window.jupyterapp.shell.currentWidget;
                await widget.sessionContext.session.kernel.info;
                await new Promise(resolve => setTimeout(resolve, 200));
                return widget.context.model.dirty;
            }"""
        )
        assert dirty is False, f"{name} is marked modified on opening"
