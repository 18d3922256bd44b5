"""Headline and summary templates for the simulated news, one bank per sentiment level.

The simulator decides each article's latent sentiment; this module turns it into words a
lexicon scorer reads the same way. Levels run from -2 (strongly negative) to +2 (strongly
positive). The sentiment lives in common English words that carry a clear polarity
(``optimism``, ``panic``, ``great``, ``fears``); the market vocabulary around them
(``rally``, ``slump``, ``inflows``) is there to read like news, not to carry the score. Neutral
texts and the filler sentences avoid polar words altogether.

Every template here was written for btcmlops; none is taken from a real article.

>>> render_article(2, (0.0, 0.0, 0.0, 0.0, 0.9, 0.0, 0.0))[0]
'Bitcoin soars as investors cheer a great week for the market'
"""

from __future__ import annotations

from collections.abc import Sequence

SENTIMENT_LEVELS = (-2, -1, 0, 1, 2)

# How many uniform draws in [0, 1) one article consumes (see ``render_article``).
DRAWS_PER_ARTICLE = 7

OUTLETS = (
    "Simulated Ledger",
    "Hashrate Herald",
    "Hourly Chain Digest",
    "Mempool Monitor",
    "Satoshi Street Wire",
)

COIN_NAMES = ("Bitcoin", "BTC", "Bitcoin")

ACTORS = (
    "traders",
    "investors",
    "analysts",
    "fund managers",
    "market makers",
    "long-term holders",
    "desk heads",
)

HEADLINES: dict[int, tuple[str, ...]] = {
    2: (
        "{coin} soars as investors cheer a great week for the market",
        "Euphoria grips {coin} as buyers celebrate an outstanding breakout",
        "{coin} rally wins over sceptics as confidence hits its best level in months",
        "Excellent demand lifts {coin} in an impressive run",
        "{coin} bulls triumph as optimism spreads across exchanges",
        "Great news for {coin}: record inflows spark excitement",
    ),
    1: (
        "{coin} gains as buyers return",
        "Optimism grows around {coin}",
        "{coin} edges up as confidence improves",
        "Hopeful {actor} support {coin}",
        "{coin} finds strength after a positive session",
        "Inflows give {coin} a welcome boost",
    ),
    0: (
        "{coin} trades in a narrow range",
        "What {actor} are watching in {coin} this week",
        "{coin} moves sideways ahead of the weekly close",
        "{coin} volumes in focus as the session opens",
        "A look at {coin} order books on major exchanges",
        "{coin} market update for the hour",
    ),
    -1: (
        "{coin} slips as worries return",
        "Doubts weigh on {coin}",
        "{coin} drops as {actor} turn nervous",
        "Uncertainty keeps {coin} under pressure",
        "{coin} losses deepen on weak demand",
        "Concern grows as {coin} struggles",
    ),
    -2: (
        "{coin} crashes as panic grips the market",
        "Fear and chaos hit {coin} in a brutal sell-off",
        "{coin} collapse deepens as fraud fears spread",
        "Disaster for {coin} bulls as heavy losses mount",
        "Grim day for {coin}: {actor} panic as prices crash",
        "Terrible week for {coin} as gloom takes over",
    ),
}

# The first sentence of the summary, in the article's own tone.
SUMMARIES: dict[int, tuple[str, ...]] = {
    2: (
        "{Actor} describe the mood as euphoric, with strong demand and great confidence.",
        "Market participants praise the excellent momentum and expect more success.",
        "The move was celebrated as a clear win, and optimism is running high.",
        "Demand looked outstanding all day and {actor} are excited about what comes next.",
    ),
    1: (
        "{Actor} sound hopeful and say demand looks solid.",
        "The gains were modest but the tone is positive.",
        "Confidence is slowly improving among {actor}.",
        "Buyers welcome the steady inflows seen this week.",
    ),
    0: (
        "{Actor} are watching order books across exchanges.",
        "Volumes were close to their weekly average.",
        "The market is waiting for the next batch of macro data.",
        "Funding rates and futures positioning were little changed.",
    ),
    -1: (
        "{Actor} are worried and the tone is cautious.",
        "Doubts about demand weigh on prices, and some desks warn of further losses.",
        "The mood is nervous and uncertainty is rising.",
        "Weak buying and fresh worries kept the market on the defensive.",
    ),
    -2: (
        "{Actor} panic as fear spreads, and many call the session a disaster.",
        "Heavy losses and talk of fraud leave the market in chaos.",
        "The sell-off was brutal, and {actor} fear a deeper collapse.",
        "Terrible liquidity and grim sentiment made it one of the worst days of the year.",
    ),
}

# Optional second sentence with no polar words, so it dilutes rather than shifts the tone.
FILLERS = (
    "Trading volume on the largest exchanges was {volume_word} than usual.",
    "The next monthly options expiry is on Friday.",
    "Miners moved coins between wallets during the session.",
    "Derivatives positioning was roughly unchanged.",
    "Spot and futures prices stayed close together.",
    "The hourly candle closed near its open.",
)

VOLUME_WORDS = ("higher", "about the same", "a little higher")


def sentiment_level(sentiment: float) -> int:
    """The template level (-2 ... 2) for a latent sentiment in [-1, 1]."""
    if sentiment <= -0.55:
        return -2
    if sentiment <= -0.15:
        return -1
    if sentiment < 0.15:
        return 0
    if sentiment < 0.55:
        return 1
    return 2


def _pick(options: Sequence[str], uniform: float) -> str:
    return options[min(int(uniform * len(options)), len(options) - 1)]


def render_article(
    level: int, draws: Sequence[float], summary_level: int | None = None
) -> tuple[str, str, str]:
    """Title, summary and outlet for one article.

    Parameters
    ----------
    level:
        The headline's sentiment level (-2 ... 2).
    draws:
        ``DRAWS_PER_ARTICLE`` uniforms in [0, 1) that choose the templates, so the text is a
        pure function of the simulator's random draws.
    summary_level:
        The summary's level; defaults to ``level``. The simulator passes a slightly jittered
        level so mid-range sentiments mix two tones, as real articles do.
    """
    headline_u, summary_u, coin_u, actor_u, filler_u, filler_pick_u, outlet_u = draws[:7]
    actor = _pick(ACTORS, actor_u)
    fields = {
        "coin": _pick(COIN_NAMES, coin_u),
        "actor": actor,
        "Actor": actor[:1].upper() + actor[1:],
        "volume_word": _pick(VOLUME_WORDS, filler_pick_u),
    }
    title = _pick(HEADLINES[level], headline_u).format(**fields)
    title = title[:1].upper() + title[1:]
    body_level = level if summary_level is None else summary_level
    body = _pick(SUMMARIES[body_level], summary_u).format(**fields)
    if filler_u < 0.5:  # about half the articles carry a neutral second sentence
        body = f"{body} {_pick(FILLERS, filler_pick_u).format(**fields)}"
    return title, body, _pick(OUTLETS, outlet_u)
