"""The user's own datasets: import a folder or a zip of images, keep it under the data root, register it.

Modules: :mod:`.decode` (one file's bytes -> a normalised uint8 image, or the reason it was skipped; runs
in worker processes, so it imports only numpy and PIL), :mod:`.sources` (the files of a folder or a zip,
checked and capped), :mod:`.importer` (parallel decoding into a staged dataset), :mod:`.store` (the
on-disk layout and manifest), :mod:`.discovery` (user datasets in ``sslcore.data.DATASETS``),
:mod:`.labels` (labels added after the import), :mod:`.usage` (runs and their datasets: what a run records,
which runs use a dataset, removal) and :mod:`.summary` (the figures the CLI and the Data page show).

This package's ``__init__`` imports nothing, so a decoding worker does not pay for torch.
"""
