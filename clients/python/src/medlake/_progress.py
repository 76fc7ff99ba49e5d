"""Progress bars: a widget in Jupyter when ipywidgets is there, text in a terminal (tqdm)."""

from __future__ import annotations

from typing import Any


def _bar_class() -> Any:
    try:
        from IPython import get_ipython  # type: ignore[import-not-found]

        shell = get_ipython()
        if shell is not None and "IPKernelApp" in shell.config:
            import ipywidgets  # type: ignore[import-not-found]  # noqa: F401
            from tqdm.notebook import tqdm  # type: ignore[import-untyped]

            return tqdm
    except ImportError:
        pass
    # A terminal, or a notebook without ipywidgets: tqdm's text bar (which in a notebook prints
    # into the cell's output instead of warning about the widget it cannot show).
    from tqdm.std import tqdm  # type: ignore[import-untyped]

    return tqdm


def progress_bar(**options: Any) -> Any:
    """A tqdm bar that appears only when what it follows lasts longer than a second."""
    return _bar_class()(delay=1.0, leave=False, dynamic_ncols=True, **options)
