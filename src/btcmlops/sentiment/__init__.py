"""Sentiment scorers: pure functions of text, one interface (text in, scores out).

* ``base`` — ``SentimentScore`` and the ``SentimentScorer`` protocol;
* ``vader`` — VADER, always available;
* ``finbert`` — FinBERT from local weights (the ``finbert`` extra);
* ``scorers`` — build the scorers the settings ask for, by name.

Nothing here reads or writes the store: the job that scores stored articles is
``btcmlops.mlops.article_scoring``.
"""
