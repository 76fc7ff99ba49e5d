"""Progress bars: a widget in Jupyter when ipywidgets is there, text in a terminal (tqdm)."""

from __future__ import annotations

from typing import Any


def progress_bar(**options: Any) -> Any:
    """A tqdm bar that appears only when what it follows lasts longer than a second."""
    bar_class: Any
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]

        shell = get_ipython()
        if shell is None or "IPKernelApp" not in shell.config:
            raise ImportError("not in a Jupyter kernel")
        import ipywidgets  # type: ignore[import-not-found]  # noqa: F401
        from tqdm.notebook import tqdm as bar_class
    except Exception:
        # A terminal, or a notebook without ipywidgets: tqdm's text bar (which in a notebook
        # prints into the cell's output instead of warning about the widget it cannot show).
        from tqdm.std import tqdm as bar_class
    return bar_class(delay=1.0, leave=False, dynamic_ncols=True, **options)
