"""Runnable examples, also available as commands: ``clnn train digits`` and
``clnn train regression``. They need the optional extra: ``pip install 'clnn[examples]'``
(scikit-learn, matplotlib, tqdm)."""
