"""The cheap check that runs after a nearest neighbour passed the similarity threshold.

Sentence embeddings score a question and its near-miss close together: all-MiniLM-L6-v2 gives
"What's the weather in Paris?" / "... in London?" 0.70, "How do I increase my credit score?" /
"... decrease ..." 0.81, "Is coffee good for your health?" / "... not good ..." 0.96. The vector
is dominated by the words the two texts share, so no threshold separates those from paraphrases.
This check looks at the words that differ instead, and rejects a match when they differ in what
changes the answer:

- ``number``: the numbers differ ("top 5" / "top 10", "Python 2" / "Python 3", "first" /
  "second"), digits and number words alike;
- ``negation``: one text is negated and the other is not (not, no, never, without, n't...);
- ``entity``: a name in one text does not occur in the other (capitalized words past the start of
  a sentence, acronyms, mixed-case and alphanumeric tokens such as iPhone, GPT4, PyTorch);
- ``question``: both ask a different who / when / where / why;
- ``antonym``: a word in one is the opposite of a word in the other, by a prefix (install /
  uninstall, increase / decrease, import / export, upgrade / downgrade...) or a short list of
  common pairs (buy / sell, hot / cold...);
- ``swap``: the same words with two of them trading places across a relation ("Do Croats like
  Turks?" / "Do Turks like Croats?", "Why is Messi better than Ronaldo?" / "... Ronaldo better
  than Messi?"): who does what to whom changed, which the embedding barely sees (0.98-0.99);
- ``implicit default`` (an acceptance, not a rejection): in two present-tense questions,
  "today", "now", "currently", "right now", "at the moment"... add nothing (the present is the
  default), so two plain questions (ending with "?", quoting nothing) of which one has such a
  qualifier (lower case: "USA Today" is a name) and the other none, the same word for word
  otherwise but for "what" / "how" / "like" / "the", are *equivalent*: accepted at any
  similarity, and flagged (:attr:`Verdict.equivalent`) so that the error bound may serve them
  cold. Two different qualifiers ("today" / "now") are no equivalence. A word that
  moves either question in time ("tomorrow", "tonight", "was", "will", "last", a past-tense
  verb) turns the rule off: "today" / "tomorrow" stays a contrast. The rule family was
  motivated by the guide's own pair ("What's the weather?" / "How's the weather today?", 0.81);
- ``content``: the texts differ in only a few content words (``max_changed_words``) and their
  similarity is below ``near_identical``. When two texts share most of their words, their
  similarity mostly measures those shared words; whether the few changed ones are synonyms
  (tall / height) or not (cat / dog, Monday / Tuesday) is then all that matters, and only a
  near-identical score says so.

:meth:`LexicalVerifier.rank_score` also orders the candidates above the threshold before they are
checked: the model's similarity plus a small weight of :func:`surface_agreement`, the share of
words the two texts write alike (see there why).

It is lexical and English-centred by design: it costs tens of microseconds, needs no model, and
errs towards a miss (a miss costs one model call; a wrong answer costs trust). Texts longer than
``max_chars`` are compared in full too: the embedding model reads only the first 256 tokens, so
this check is what notices a difference further on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final, Literal

import attrs

from rgruntime.errors import InvalidArgumentError
from rgruntime.validation import similarity as _similarity

__all__ = [
    "REJECTION_REASONS",
    "LexicalVerifier",
    "RejectionReason",
    "UserVerifier",
    "Verdict",
    "surface_agreement",
]

RejectionReason = Literal[
    "number", "negation", "entity", "question", "antonym", "contrast", "swap", "content", "user"
]
REJECTION_REASONS: Final[tuple[RejectionReason, ...]] = (
    "number",
    "negation",
    "entity",
    "question",
    "antonym",
    "contrast",
    "swap",
    "content",
    "user",
)

#: An application's own check: ``await verifier(query_text, cached_text, similarity)`` returns
#: True to accept the match. It runs after the lexical check accepted.
UserVerifier = Callable[[str, str, float], Awaitable[bool]]


@attrs.frozen
class Verdict:
    """The outcome of a verification: accepted, or the reason it was rejected."""

    accepted: bool
    reason: RejectionReason | None = None
    detail: str = ""
    #: Accepted because the texts differ only in an implicit-default qualifier ("today", "now"
    #: in a present-tense question): the same question by rule, not by similarity alone.
    equivalent: bool = False


ACCEPTED: Final = Verdict(True)
EQUIVALENT: Final = Verdict(True, equivalent=True)


def _words(text: str) -> list[str]:
    return text.split()


# Tokens: numbers (with separators, decimals, ordinal suffixes and unit letters: 5k, 3rd, 2.5x),
# words with inner apostrophes or hyphens, and the currency and percent signs.
_TOKEN: Final = re.compile(r"\d[\d,]*(?:\.\d+)?[a-zA-Z]*|[^\W\d_]+(?:['\u2019][^\W\d_]+)*|[$€£%]")
#: Characters between two tokens that make the second one start a sentence (or a quote, or a
#: list item), where a capital says nothing about a name.
_SENTENCE_BREAK: Final = re.compile(r"[.!?:;\"“(\n*•-]")

_NUMBER_WORDS: Final = {
    word: str(value)
    for value, word in enumerate(
        _words(
            "zero _ two three four five six seven eight nine ten eleven twelve thirteen fourteen "
            "fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
    # "one" and "first" are pronoun and adverb too often ("which one", "do this first"): a
    # difference with "two" or "second" in the other text still shows.
    if word != "_"
} | {
    "thirty": "30",
    "forty": "40",
    "fifty": "50",
    "sixty": "60",
    "seventy": "70",
    "eighty": "80",
    "ninety": "90",
    "hundred": "100",
    "hundreds": "100",
    "thousand": "1000",
    "thousands": "1000",
    "million": "1000000",
    "millions": "1000000",
    "billion": "1000000000",
    "billions": "1000000000",
    "second": "2th",
    "third": "3th",
    "fourth": "4th",
    "fifth": "5th",
    "sixth": "6th",
    "seventh": "7th",
    "eighth": "8th",
    "ninth": "9th",
    "tenth": "10th",
    "half": "0.5",
}
_ORDINAL: Final = re.compile(r"^(\d+)(?:st|nd|rd|th)$")
_POSSESSIVE: Final = re.compile(r"'s$")
#: "No," answering a question is not a negation of what follows.
_ANSWER_NO: Final = re.compile(r"\s*[,.!;:]")

_NEGATIONS: Final = frozenset(
    _words(
        "not no never none nobody nothing nowhere neither nor without cannot cant dont doesnt "
        "didnt isnt arent wasnt werent wont wouldnt shouldnt couldnt hasnt havent hadnt aint non "
        "absence lack lacks lacking"
    )
)

#: Words that frame a request rather than say what it is about.
_STOPWORDS: Final = frozenset(
    _words(
        "a an the and or but if then than so as of at by for with about into onto from to in on "
        "off over under up down out again further once here there all any both each few more most "
        "other some such only own same too very just also even still yet ever much many lot lots "
        "i me my mine myself we us our ours you your yours he him his she her hers it its they "
        "them their theirs this that these those what which who whom whose when where why how "
        "whats hows whos wheres whens whys is am are was were be been being have has had having "
        "do does did doing done can could will would shall should may might must need needs want "
        "wants like please tell give show explain describe list find get got make makes made let "
        "lets know help suggest recommend provide write create share say says said think use "
        "using used calculate compute determine convert way ways thing things kind kinds type "
        "types sort someone something anything everything good best better great really actually "
        "exactly possible able there's here's s t d ll m re ve"
    )
)
#: Wh-words that change what is asked: two different ones mean two different questions.
_QUESTION_WORDS: Final = frozenset({"who", "when", "where", "why"})

# Prefix pairs that turn a word into its opposite (the rest of the word being the same).
_POLAR_PREFIXES: Final = frozenset(
    {
        ("", "un"),
        ("", "in"),
        ("", "im"),
        ("", "il"),
        ("", "ir"),
        ("", "dis"),
        ("", "de"),
        ("", "non"),
        ("", "anti"),
        ("", "mis"),
        ("in", "de"),
        ("in", "ex"),
        ("im", "ex"),
        ("en", "de"),
        ("en", "dis"),
        ("up", "down"),
        ("max", "min"),
        ("over", "under"),
        ("pre", "post"),
        ("in", "out"),
        ("inc", "dec"),
        ("ac", "de"),
        ("as", "de"),
    }
)
_ANTONYMS: Final = frozenset(
    frozenset(pair.split("/"))
    for pair in _words(
        "buy/sell hot/cold warm/cool warmer/cooler gain/lose gain/loss win/lose big/small "
        "large/small largest/smallest biggest/smallest high/low higher/lower highest/lowest "
        "old/new older/newer oldest/newest old/young fast/slow faster/slower fastest/slowest "
        "early/late earlier/later cheap/expensive cheapest/expensive strong/weak good/bad "
        "best/worst better/worse open/close open/closed start/stop start/end begin/end first/last "
        "add/remove add/delete push/pull import/export hire/fire rise/fall rising/falling up/down "
        "on/off more/less most/least many/few long/short longer/shorter longest/shortest "
        "heavy/light hard/soft harder/softer easy/difficult easy/hard easiest/hardest wet/dry "
        "light/dark true/false right/wrong right/left before/after above/below inside/outside "
        "male/female men/women man/woman boy/girl pros/cons benefits/risks benefit/risk "
        "advantage/risk profit/loss success/failure succeed/fail pass/fail accept/reject "
        "allow/deny allow/block include/exclude enter/exit arrive/depart arrival/departure "
        "north/south east/west summer/winter day/night morning/evening sweet/sour sweet/salty "
        "thick/thin wide/narrow deep/shallow rich/poor positive/negative plus/minus "
        "maximum/minimum increase/reduce raise/lower expand/shrink merge/split join/leave "
        "send/receive input/output inbound/outbound upstream/downstream love/hate happy/sad "
        "friend/enemy safe/dangerous legal/banned healthy/unhealthy same/different "
        "similar/different before/since always/never all/none everyone/nobody buyer/seller "
        "borrow/lend cause/effect causes/effects spend/earn income/expense"
    )
)

#: Opposite particles of phrasal verbs (zoom in / out, went up / down, turn on / off): a pair
#: counts only when each text has one of the two and not the other.
_PARTICLES: Final = (("up", "down"), ("in", "out"), ("on", "off"))

# The contrast rule: closed classes whose members stand for one another in a sentence, so that
# the model scores an exchange of two of them as a near paraphrase ("open in the afternoon" /
# "in the evening" 0.95), while it changes the answer. Written as kinds of words, not from any
# list of test pairs: exchanging two members of one class is refused at any similarity.
_CONTRAST_CLASSES: Final = tuple(
    frozenset(_words(members))
    for members in (
        "morning afternoon evening night midnight noon dawn dusk daytime nighttime",
        "monday tuesday wednesday thursday friday saturday sunday weekday weekend weekdays "
        "weekends",
        "january february march april june july august september october november december",
        "spring summer autumn fall winter",
        "yesterday today tomorrow tonight",
        "breakfast brunch lunch dinner supper",
        "north south east west northern southern eastern western",
        "indoors outdoors inside outside indoor outdoor",
        "average mean median mode maximum minimum max min top total peak typical",
        "key keys value values",
        "mm millimetre millimetres millimeter millimeters cm centimetre centimetres centimeter "
        "centimeters metre metres meter meters km kilometre kilometres kilometer kilometers inch "
        "inches foot feet yard yards mile miles",
        "mg milligram milligrams gram grams kg kilogram kilograms ounce ounces oz pound pounds "
        "lb lbs stone tonne tonnes ton tons",
        "ml millilitre millilitres milliliter milliliters litre litres liter liters cup cups "
        "pint pints quart quarts gallon gallons teaspoon teaspoons tablespoon tablespoons",
        "celsius fahrenheit kelvin",
        "second seconds minute minutes hour hours day days week weeks month months year years "
        "decade decades",
        "protein proteins fat fats carb carbs carbohydrate carbohydrates sugar sugars fibre "
        "fiber calories calorie sodium salt",
        "height age weight width length depth area population size",
    )
)
# The present against another time: "open now?" / "open tonight?", "the queue now" / "the queue
# last night", "the UV index right now" / "at noon". A question about the present and one about
# another time ask different things, however close their words (0.80-0.95 on MiniLM).
_PRESENT_TIME: Final = frozenset(_words("now currently presently nowadays"))
_OTHER_TIME: Final = frozenset(
    _words(
        "tonight tomorrow yesterday morning afternoon evening night noon midnight dawn dusk "
        "weekend weekends last next ago later earlier soon"
    )
)
# Superlatives are a class of their own: two different ones ask for different things ("the
# warmest month" / "the coldest"). Words ending in -est that are not superlatives:
_NOT_SUPERLATIVES: Final = frozenset(
    _words(
        "interest forest request test honest modest suggest invest protest harvest digest "
        "contest arrest guest chest west rest nest quest pest vest crest manifest priest "
        "conquest earnest contest latest interest ingest unrest attest detest divest infest "
        "behest bequest everest"
    )
)
_SUPERLATIVE_WORDS: Final = frozenset(_words("most least fewest best worst"))
# Function words that still give a direction to the two words around them: "from Boston to
# Chicago", "convert feet to metres", "10 miles in kilometres", "bigger than". ("from" alone is
# not one: "the Earth from the Moon" is a distance, the same both ways.)
_DIRECTIONAL: Final = frozenset(_words("to into onto towards toward than in"))

# Implicit-default qualifiers (the rule family was motivated by the guide's pair "What's the
# weather?" / "How's the weather today?"): a question in the present tense is asked about the
# present, so "today", "now", "currently", "right now"... add nothing to it. Any word that moves
# the question in time ("tomorrow", "tonight", "was", "will", "last", "next"...) keeps the
# qualifier meaningful: then the texts are compared as written (the contrast rule refuses
# "today" / "tomorrow").
_IMPLICIT_DEFAULT: Final = re.compile(
    r"\b(?:right now|as of (?:now|today)|at the moment|at present|at this time|these days|"
    r"nowadays|currently|presently|today(?:['\u2019]s)?|(?<!from )(?<!until )(?<!till )(?<!by )"
    r"(?<!to )(?<!just )now(?! that| on))\b",
    re.IGNORECASE,
)
_TIME_SHIFT: Final = frozenset(
    _words(
        "yesterday tomorrow tonight was were wasnt werent did didnt will wont would had hadnt "
        "last next ago later earlier soon future past previous previously upcoming then tense "
        "morning afternoon evening night weekend week month year monday tuesday wednesday "
        "thursday friday saturday sunday went came ran ate saw won lost got gave took made said "
        "told found left paid sold bought built began became brought thought felt kept held "
        "met sent spent stood wrote"
    )
)


def _present_reduced(text: str) -> str | None:
    """``text`` without its implicit-default qualifiers, or None when something in it moves
    the question in time (then a qualifier may be what separates it from another text)."""
    for word in _WORD_FORM.findall(text.lower()):
        if word in _TIME_SHIFT or (len(word) > 4 and word.endswith("ed")):
            return None
    return " ".join(_IMPLICIT_DEFAULT.sub(" ", text).split())


#: The words a question's frame may change in without asking otherwise ("What's the weather
#: like?" / "How's the weather?", "today's date" / "the date"): everything else must be the
#: same word for word.
_FRAME_WORDS: Final = frozenset(_words("what how like the"))
_MIN_QUESTION_WORDS: Final = 3
_CONTRACTIONS: Final = {"'s": " is", "'re": " are", "'m": " am"}
_QUOTES: Final = re.compile(
    "[\"\u201c\u201d\u2018\u00ab\u00bb]|(?<![^\\W\\d_])['\u2019]|['\u2019](?![^\\W\\d_])"
)


def _plain_question(text: str) -> bool:
    """A question asked in plain words: ends with "?", quotes nothing (a quoted "today" is a
    word being asked about, not a time)."""
    return text.rstrip().endswith("?") and _QUOTES.search(text) is None


def _qualifier_apart(query: str, cached: str) -> tuple[str, str] | None:
    """Both texts without their qualifiers, when exactly one of them has some, both are plain
    present-tense questions, and no qualifier is capitalised (a name: "USA Today")."""
    found = [_IMPLICIT_DEFAULT.findall(text) for text in (query, cached)]
    if bool(found[0]) == bool(found[1]):
        return None  # neither, or both (two qualifiers may differ: "today" / "now")
    if not all(_plain_question(text) for text in (query, cached)):
        return None
    if any(qualifier != qualifier.lower() for qualifier in found[0] or found[1]):
        return None
    reduced_query, reduced_cached = _present_reduced(query), _present_reduced(cached)
    if reduced_query is None or reduced_cached is None:
        return None
    return reduced_query, reduced_cached


def _expanded_words(text: str) -> list[str]:
    """``text``'s words, lower case, contractions of "is" / "are" / "am" spelled out."""
    lowered = text.lower().replace("\u2019", "'")
    for short, long in _CONTRACTIONS.items():
        lowered = lowered.replace(short, long)
    return _WORD_FORM.findall(lowered)


_DEFAULT_NEAR_IDENTICAL: Final = 0.93
#: Chosen on the even rows of GPTCache's data (flat from 0.05 to 0.3), confirmed on the odd rows
#: (docs/semantic.md, "Evaluation").
_DEFAULT_RANK_WEIGHT: Final = 0.2

# The swap rule. Words that cannot carry a relation between two swapped words: with only these
# between them ("salary of a Spotify technician" / "Spotify technician's salary", "distance from
# the Sun to the Earth"), the two words are not subject and object of anything.
_FUNCTION_WORDS: Final = frozenset(
    _words(
        "a an the this that these those some any each every all both either neither no of at by "
        "for with about into onto from to in on off over under up down out through across within "
        "upon per via i me my mine myself we us our ours you your yours he him his she her hers it "
        "its they them their theirs one someone somebody something anyone anybody anything "
        "everyone everything what which who whom whose when where why how whats hows do does did "
        "doing done have has had having can could will would shall should may might must need get "
        "got gets so very really just also too even still only much many more most such there "
        "here if then as"
    )
)
# A coordination (X and Y, X or Y, X vs Y, X, Y) is symmetric: "real gas and ideal gas" / "ideal
# gas and real gas" ask the same. A passive (X is loaded by Y / Y loads X) swaps its subject and
# object without changing the meaning. Either between the swapped words: no swap.
_SYMMETRIC_OR_PASSIVE: Final = frozenset(
    _words("and or nor vs versus , & ; / be is are was were been being am by")
)
_SPAN_WORD: Final = re.compile(r"[^\W_]+|[,&;/]")
# Word forms as written, for surface_agreement.
_WORD_FORM: Final = re.compile(r"\w+")


def _stem(word: str) -> str:
    """A light stemmer: enough to match make / makes / making, city / cities, remote / remotely."""
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("ing", ""), ("ed", ""), ("ly", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + replacement
            break
    else:
        if word.endswith(("ses", "xes", "zes", "ches", "shes")) and len(word) > 4:
            word = word[:-2]
        elif word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
            word = word[:-1]
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


@attrs.frozen
class _Text:
    """What the check compares of one text."""

    numbers: Counter[str]
    negated: bool
    entities: frozenset[str]  # lower-cased
    words: frozenset[str]  # every word, lower-cased, without apostrophes or possessive 's
    # Each name joined with the word before and after it (Hugging Face: huggingface).
    joined: dict[str, frozenset[str]]
    content: dict[str, str]  # stem of each content word -> the word
    questions: frozenset[str]
    # The stems of the content words in order, each with its span in the text (the swap rule).
    sequence: tuple[tuple[str, int, int], ...]


def _is_entity_shaped(token: str) -> bool:
    """Acronyms (NASA), mixed case (iPhone, PyTorch) and letters with digits (GPT4)."""
    if any(character.isdigit() for character in token):
        return any(character.isalpha() for character in token) and not _ORDINAL.match(token)
    return (len(token) > 1 and token.isupper()) or any(c.isupper() for c in token[1:])


def _sentence_starts(text: str, tokens: list[re.Match[str]]) -> list[bool]:
    starts: list[bool] = []
    previous_end = -1
    for match in tokens:
        starts.append(
            previous_end < 0 or bool(_SENTENCE_BREAK.search(text, previous_end, match.start()))
        )
        previous_end = match.end()
    return starts


def _analyse(text: str) -> _Text:
    numbers: Counter[str] = Counter()
    negations = 0
    entities: set[str] = set()
    words: set[str] = set()
    content: dict[str, str] = {}
    tokens = list(_TOKEN.finditer(text))
    starts = _sentence_starts(text, tokens)
    # In Title Case Or ALL CAPS text, capitals say nothing about names: such a text capitalizes
    # small words too ("Why Does The...").
    capitals_informative = (
        sum(
            1
            for match, start in zip(tokens, starts, strict=True)
            if not start and match.group()[0].isupper() and match.group().lower() in _STOPWORDS
        )
        < 2
    )
    plains: list[str] = []
    entity_positions: list[int] = []
    sequence: list[tuple[str, int, int]] = []
    for match, starts_sentence in zip(tokens, starts, strict=True):
        token = match.group()
        if token[0].isdigit():
            lower = token.lower()
            ordinal = _ORDINAL.match(lower)
            number = f"{ordinal.group(1)}th" if ordinal else lower.replace(",", "")
            numbers[number] += 1
            sequence.append((number, match.start(), match.end()))
            if _is_entity_shaped(token):
                entities.add(lower)
            continue
        if token == "%":
            token = "percent"  # "15%" and "15 percent" say the same
        elif not token[0].isalpha():
            continue
        lower = token.lower().replace("\u2019", "'")
        plain = _POSSESSIVE.sub("", lower).replace("'", "")
        words.add(plain)
        plains.append(plain)
        if plain in _NUMBER_WORDS:
            numbers[_NUMBER_WORDS[plain]] += 1
            continue
        if plain in _NEGATIONS or lower.endswith("n't"):
            idiom = (plain == "no" and _ANSWER_NO.match(text, match.end())) or (
                plain == "not" and len(plains) > 1 and plains[-2] in ("or", "why")
            )
            negations += not idiom  # "No, ..." answers; "why not", "or not" ask
            continue
        if _is_entity_shaped(token) or (
            capitals_informative and token[0].isupper() and token != "I" and not starts_sentence
        ):
            entities.add(plain)
            entity_positions.append(len(plains) - 1)
        if plain not in _STOPWORDS and len(plain) > 1:
            content.setdefault(_stem(plain), plain)
            sequence.append((_stem(plain), match.start(), match.end()))
    return _Text(
        numbers=numbers,
        negated=negations > 0,
        entities=frozenset(entities),
        words=frozenset(words),
        joined=_joined(plains, entity_positions),
        content=content,
        questions=frozenset(words & _QUESTION_WORDS),
        sequence=tuple(sequence),
    )


def _joined(plains: list[str], positions: list[int]) -> dict[str, frozenset[str]]:
    joined: dict[str, set[str]] = {}
    for position in positions:
        pairs = joined.setdefault(plains[position], set())
        if position > 0:
            pairs.add(plains[position - 1] + plains[position])
        if position + 1 < len(plains):
            pairs.add(plains[position] + plains[position + 1])
    return {entity: frozenset(pairs) for entity, pairs in joined.items()}


def _missing_entities(a: _Text, b: _Text) -> set[str]:
    """The names of ``a`` that ``b`` does not mention in any form."""
    missing = set()
    for entity in a.entities:
        if entity in b.words or entity in b.entities:
            continue
        if not a.joined.get(entity, frozenset()).isdisjoint(b.words):  # Hugging Face / Huggingface
            continue
        missing.add(entity)
    return missing


def _polar(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are opposites by a prefix or by the list of common pairs."""
    if frozenset((a, b)) in _ANTONYMS:
        return True
    shared = 0
    while shared < min(len(a), len(b)) and a[-1 - shared] == b[-1 - shared]:
        shared += 1
    if shared < 3:
        return False
    head_a, head_b = a[: len(a) - shared], b[: len(b) - shared]
    return (head_a, head_b) in _POLAR_PREFIXES or (head_b, head_a) in _POLAR_PREFIXES


def _opposites(a: _Text, b: _Text) -> tuple[str, str] | None:
    """A word of ``a`` and a word of ``b`` that are opposites, each missing from the other."""
    only_a, only_b = a.words - b.words, b.words - a.words
    for first, second in _PARTICLES:
        if first in only_a and second in only_b:
            return first, second
        if second in only_a and first in only_b:
            return second, first
    stems_a = {_stem(word): word for word in only_a}
    stems_b = {_stem(word): word for word in only_b}
    for stem_a, word_a in stems_a.items():
        for stem_b, word_b in stems_b.items():
            if stem_a != stem_b and (_polar(word_a, word_b) or _polar(stem_a, stem_b)):
                return word_a, word_b
    return None


def _is_superlative(word: str) -> bool:
    return word in _SUPERLATIVE_WORDS or (
        len(word) > 4 and word.endswith("est") and word not in _NOT_SUPERLATIVES
    )


def _contrasted(a: _Text, b: _Text) -> tuple[str, str] | None:
    """A word of ``a`` and a word of ``b``, each missing from the other, of one closed class;
    or the present in one ("now") against another time in the other ("tonight", "last")."""
    only_a, only_b = a.words - b.words, b.words - a.words
    for word_a in sorted(only_a):
        for word_b in sorted(only_b):
            if any(word_a in kind and word_b in kind for kind in _CONTRAST_CLASSES):
                return word_a, word_b
            if _is_superlative(word_a) and _is_superlative(word_b):
                return word_a, word_b
    for present, other in ((only_a, only_b), (only_b, only_a)):
        now, then = present & _PRESENT_TIME, other & _OTHER_TIME
        if now and then:
            return min(now), min(then)
    return None


def _relation(text: str, start: int, end: int) -> list[str] | None:
    """The words of ``text[start:end]`` if they can relate the words on either side of them."""
    between = [word.lower() for word in _SPAN_WORD.findall(text, start, end)]
    if any(word in _SYMMETRIC_OR_PASSIVE for word in between):
        return None
    # Compared without the other function words: "from PayPal to my bank" / "from my bank to
    # PayPal" relate the two by "to" both ways.
    relating = [word for word in between if word not in _FUNCTION_WORDS or word in _DIRECTIONAL]
    return relating or None


def _swapped(a: str, a_text: _Text, b: str, b_text: _Text) -> tuple[str, str] | None:
    """Two content words that trade places across a relation, the rest of the words in order.

    Only that exact shape: the same content words in the same order but for one pair exchanged,
    and between the two the same words in both texts, among them one that can relate them (a
    verb, an adjective: not "of", "and", "is ... by"). Anything looser rejected paraphrases that
    reorder their words freely ("Which building in Dubai is the tallest?" / "What is the tallest
    building in Dubai?"), turn to the passive, or to the genitive ("the salary of a technician at
    Spotify" / "a Spotify technician's salary").
    """
    first, second = a_text.sequence, b_text.sequence
    if len(first) != len(second):
        return None
    differ = [i for i, (x, y) in enumerate(zip(first, second, strict=True)) if x[0] != y[0]]
    if len(differ) != 2:
        return None
    i, j = differ
    if first[i][0] != second[j][0] or first[j][0] != second[i][0]:
        return None
    relation = _relation(a, first[i][2], first[j][1])
    if relation is not None and relation == _relation(b, second[i][2], second[j][1]):
        return first[i][0], first[j][0]
    return None


def surface_agreement(a: str, b: str) -> float:
    """The share of word forms, as written (case kept), that ``a`` and ``b`` have in common.

    Jaccard similarity of their sets of ``\\w+`` tokens, in [0, 1]. Used to order candidates
    that all passed the threshold: among texts the model scores within a few hundredths of each
    other, the one whose wording the query shares is more often the one it paraphrases. A
    near-duplicate (a second phrasing of the same fact, ``AudioFolder`` spelled ``audiofolder``)
    often scores a hair above it.
    """
    words_a, words_b = set(_WORD_FORM.findall(a)), set(_WORD_FORM.findall(b))
    union = len(words_a | words_b)
    return len(words_a & words_b) / union if union else 1.0


@attrs.frozen(kw_only=True)
class LexicalVerifier:
    """The check described in the module documentation; every rule can be turned off.

    ``near_identical`` is the similarity that texts differing in at most ``max_changed_words``
    content words must reach (``max_changed_words=0`` turns the ``content`` rule off).
    ``rank_weight`` is the weight of :func:`surface_agreement` in :meth:`rank_score` (0: the
    candidates are checked nearest first).
    """

    numbers: bool = True
    negation: bool = True
    entities: bool = True
    questions: bool = True
    antonyms: bool = True
    contrasts: bool = True
    swaps: bool = True
    implicit_defaults: bool = True
    max_changed_words: int = 2
    near_identical: float = _DEFAULT_NEAR_IDENTICAL
    rank_weight: float = _DEFAULT_RANK_WEIGHT

    def __attrs_post_init__(self) -> None:
        _similarity(self.near_identical, "near_identical")
        count = self.max_changed_words
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidArgumentError("max_changed_words", count, "a whole number >= 0")
        weight = self.rank_weight
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 <= weight <= 1:
            raise InvalidArgumentError(
                "rank_weight", weight, "a number between 0 and 1 (0 turns re-ranking off)"
            )

    def rank_score(self, query: str, cached: str, similarity: float) -> float:
        """The order in which candidates above the threshold are checked (highest first).

        ``similarity`` plus ``rank_weight`` times :func:`surface_agreement`: at the default 0.2,
        a candidate 0.01 less similar goes first if it shares 5 points more of its words.
        """
        if not self.rank_weight:
            return similarity
        return similarity + self.rank_weight * surface_agreement(query, cached)

    def check(self, query: str, cached: str, similarity: float) -> Verdict:
        """Accept the match of ``query`` to the cached text ``cached``, or say why not."""
        if query == cached:
            return ACCEPTED
        if self.implicit_defaults:
            verdict = self._without_defaults(query, cached, similarity)
            if verdict is not None:
                return verdict
        return self._check(query, cached, similarity)

    def _without_defaults(self, query: str, cached: str, similarity: float) -> Verdict | None:
        """EQUIVALENT when two present-tense questions differ in an implicit-default qualifier
        that one of them has and the other has not ("How's the weather today?" / "What's the
        weather?"), and otherwise at most in the question word (what / how); None: the rule has
        nothing to say (the texts are then checked as written)."""
        reduced = _qualifier_apart(query, cached)
        if reduced is None:
            return None
        words = [_expanded_words(text) for text in reduced]
        if min(len(words[0]), len(words[1])) < _MIN_QUESTION_WORDS:
            return None
        if not set(words[0]) ^ set(words[1]) <= _FRAME_WORDS:
            return None  # another word changed (a pronoun, "why", "ever", "there"...)
        if not self._check(*reduced, similarity).accepted:
            return None
        return EQUIVALENT

    def _check(self, query: str, cached: str, similarity: float) -> Verdict:
        a, b = _analyse(query), _analyse(cached)
        for rule in (self._names, self._meaning, self._wording):
            verdict = rule(a, b, similarity)
            if verdict is not None:
                return verdict
        if self.swaps:
            pair = _swapped(query, a, cached, b)
            if pair is not None:
                return Verdict(False, "swap", " / ".join(pair))
        return ACCEPTED

    def _names(self, a: _Text, b: _Text, similarity: float) -> Verdict | None:
        """Numbers and names: the things a paraphrase never changes."""
        if self.numbers and a.numbers != b.numbers:
            differ = sorted((a.numbers - b.numbers) + (b.numbers - a.numbers))
            return Verdict(False, "number", " ".join(differ))
        if self.entities:
            missing = _missing_entities(a, b) | _missing_entities(b, a)
            if missing:
                return Verdict(False, "entity", " ".join(sorted(missing)))
        return None

    def _meaning(self, a: _Text, b: _Text, similarity: float) -> Verdict | None:
        """Polarity and the kind of question."""
        if self.negation and a.negated != b.negated:
            return Verdict(False, "negation", "query" if a.negated else "cached text")
        if self.questions and a.questions and b.questions and a.questions.isdisjoint(b.questions):
            return Verdict(False, "question", " ".join(sorted(a.questions ^ b.questions)))
        if self.antonyms:
            pair = _opposites(a, b)
            if pair is not None:
                return Verdict(False, "antonym", " / ".join(pair))
        if self.contrasts:
            pair = _contrasted(a, b)
            if pair is not None:
                return Verdict(False, "contrast", " / ".join(pair))
        return None

    def _wording(self, a: _Text, b: _Text, similarity: float) -> Verdict | None:
        """Few changed content words need a near-identical score (see the module)."""
        only_a = a.content.keys() - b.content.keys()
        only_b = b.content.keys() - a.content.keys()
        changed = len(only_a) + len(only_b)
        if 0 < changed <= self.max_changed_words and similarity < self.near_identical:
            words = sorted(a.content[s] for s in only_a) + sorted(b.content[s] for s in only_b)
            return Verdict(False, "content", " ".join(words))
        return None
