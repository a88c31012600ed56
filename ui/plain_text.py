"""Text that people, uploads or archives supply (run names, tags, error messages, file, folder and class
names), shown as typed wherever Streamlit would read Markdown.

``st.markdown``, ``st.caption``, ``st.info`` and friends, image captions, and the labels of buttons, expanders
and metrics all render Markdown: a run or class folder called ``![x](http://host/b.png)`` would make every
viewer's browser fetch that URL. Every ASCII punctuation character is backslash-escaped (CommonMark shows an
escaped character literally), which also disarms Streamlit's ``:color[...]`` and ``:material/...:``
directives, HTML and ``$`` maths. Tables (``st.dataframe``) and select-box options are plain text already.
"""
from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(text: object) -> str:
    """``text`` with every ASCII punctuation character backslash-escaped and line breaks as spaces."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))



def counted(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: "1 run", "0 runs", "12 runs" (regular plurals only)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
