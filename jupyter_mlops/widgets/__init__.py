"""The pipeline panel for notebook frontends that render ipywidgets but not lab extensions.

``from jupyter_mlops.widgets import PipelinePanel; PipelinePanel("churn.ipynb")`` works in
Notebook 7, VS Code and hosted notebooks alike; ``PipelinePanel.this_notebook()`` analyses the
notebook the kernel runs in.
"""

from .panel import PipelinePanel

__all__ = ["PipelinePanel"]
