"""torchlesson: see what a notebook cell did to its tensors, and check yourself with quizzes.

Load it in IPython, JupyterLab, Notebook 7, VS Code or Colab::

    %load_ext torchlesson

then put ``%%autograd_trace`` on top of a cell to see the computational graph it built and the
gradients that flowed through it, or run ``%quiz autograd`` for a self-check. Everything the magics
do is plain Python too::

    import torchlesson
    with torchlesson.trace() as t:
        ...
    t.to_dict()

Heavy modules (torch, the widgets) are imported lazily, so ``import torchlesson`` is cheap and has
no side effects.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "GraphWidget",
    "PredictError",
    "Prediction",
    "QuizError",
    "QuizWidget",
    "Trace",
    "Tracer",
    "__version__",
    "collect_quiz_results",
    "export_quiz_results",
    "list_quizzes",
    "load_ipython_extension",
    "predict",
    "quiz",
    "quiz_results",
    "trace",
    "unload_ipython_extension",
]

# public name -> private module that defines it (imported on first use)
_LAZY = {
    "trace": "capture",
    "Trace": "capture",
    "Tracer": "capture",
    "GraphWidget": "picture.widget",
    "quiz": "_quiz",
    "list_quizzes": "_quiz",
    "quiz_results": "_quiz",
    "QuizError": "_quiz_model",
    "export_quiz_results": "_quiz_sheet",
    "collect_quiz_results": "_quiz_saving",
    "QuizWidget": "_quiz_widget",
    "predict": "_predict",
    "Prediction": "_predict",
    "PredictError": "_predict",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._predict import PredictError, Prediction, predict
    from ._quiz import list_quizzes, quiz, quiz_results
    from ._quiz_model import QuizError
    from ._quiz_saving import collect_quiz_results
    from ._quiz_sheet import export_quiz_results
    from ._quiz_widget import QuizWidget
    from .capture import Trace, Tracer, trace
    from .picture.widget import GraphWidget


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'torchlesson' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%autograd_trace`` and ``%quiz``. Loading twice is harmless."""
    from ._magics import TorchlessonMagics

    ipython.register_magics(TorchlessonMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics again; the user's namespace and torch are left as they were."""
    magics = ipython.magics_manager.magics
    for kind, names in (("cell", ("autograd_trace",)), ("line", ("quiz",))):
        for name in names:
            magics[kind].pop(name, None)
    ipython.magics_manager.registry.pop("TorchlessonMagics", None)
