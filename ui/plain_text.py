"""User text (file, folder and class names from an upload) inside Streamlit messages, shown as typed.

``st.error``/``st.success``/``st.markdown`` render Markdown: a class folder called ``![x](http://host/b.png)``
would make every viewer's browser fetch that URL. Every ASCII punctuation character is backslash-escaped
(CommonMark shows an escaped character literally), which also disarms Streamlit's ``:color[...]`` and
``:material/...:`` directives, HTML and ``$`` maths.
"""
from __future__ import annotations

import re

_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def escape_markdown(text: str) -> str:
    """``text`` with every ASCII punctuation character backslash-escaped and line breaks as spaces."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(str(text).split()))
