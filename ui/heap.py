"""Keep Streamlit's garbage collection after every script run cheap once torch is loaded.

Streamlit calls ``gc.collect()`` after every script run, fragment reruns included (the hidden option
``runner.postScriptGC``). Once torch, torchvision and scikit-learn are imported, a full collection walks
millions of long-lived objects, about 0.3 s a run: polling a live run cost ~15% of a core. What exists
right after modules are imported lives as long as the process, so ``gc.freeze()`` moves it out of the
collector's sight and each later collection only looks at what the runs themselves created.
"""
from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_modules_when_frozen = 0


def settle_heap() -> None:
    """After a script run that imported new modules: collect once, then freeze every surviving object.

    A no-op (one ``len``) on the runs that imported nothing, which is nearly all of them.
    """
    global _modules_when_frozen
    if len(sys.modules) == _modules_when_frozen:
        return
    with _lock:
        if len(sys.modules) != _modules_when_frozen:
            gc.collect()
            gc.freeze()
            _modules_when_frozen = len(sys.modules)
