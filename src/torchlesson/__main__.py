"""``python -m torchlesson``: commands for quiz authors and teachers.

python -m torchlesson check my_quiz.toml     # validate a quiz, run its code, check its answers
python -m torchlesson results *.ipynb -o class.csv   # collect answers saved in notebooks
"""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
