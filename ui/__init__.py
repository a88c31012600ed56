"""Dashboard building blocks shared by the pages in ``app_pages/``.

Pages stay thin: widgets in, ``sslcore`` calls out, figures drawn. What more than one page needs lives
here, one concern per module:

- :mod:`ui.server`: the server-wide job manager (``st.cache_resource``) and the app's settings (env vars).
- :mod:`ui.runs`: the run picker that keeps ``?run=<id>`` in the URL, and run-folder reads cached by mtime.
- :mod:`ui.live`: the live run panel (an ``st.fragment`` polling the run folder while the run is active).
- :mod:`ui.live_charts`: plotly charts updated in place, so a user's zoom survives new points.
- :mod:`ui.forms`: widgets generated from the config dataclasses' field metadata.
- :mod:`ui.datasets`: cached datasets, their facts and sample images, pretext-task previews.
- :mod:`ui.charts`, :mod:`ui.images`: pure figure builders and image grids (no streamlit).
- :mod:`ui.heap`, :mod:`ui.warmup`: keep the server responsive (cheap GC after reruns, background imports).
- :mod:`ui.base_url`: the ASGI middleware ``serve.py`` installs (direct page loads probe no wrong URLs);
  ``ui/assets/`` holds the page icon (a local file: nothing is fetched from the internet).

Page-specific modules carry their page's name:

- ``ui.train_pairing``: Train (why a task does not fit the chosen data, with buttons that switch to data that
  fits; why a task narrows the encoders), drawn from ``sslcore.pairing``.
- ``ui.snapshots``, ``ui.snapshot_view``: Reconstructions & views (cached snapshot reads and image strips, the
  epoch player; the file format is ``sslcore.engine.snapshots``, what is drawn is each task's ``panels``).
- ``ui.embedding_map`` (+ ``.html``), ``ui.embedding_data``, ``ui.embedding_neighbours``: Embeddings (the
  WebGL map component with hover thumbnails, cached features/maps/figures, neighbour strips).
- ``ui.evaluate_controls``, ``ui.evaluate_results``, ``ui.evaluate_charts``, ``ui.evaluate_confusion``: Evaluate
  (the settings form and job panel, results and verdict, label-efficiency and confusion figures).
- ``ui.runs_table``, ``ui.runs_compare``, ``ui.runs_actions``, ``ui.runs_import``: Runs (the table and its
  cached summaries, overlaid curves and config diff, per-run actions, zip upload).
"""
