"""The presidio analyzer we run: its own pattern recognizers plus ours, for English and Chinese.

Importing this module imports presidio and jieba (the privacy extra); ``Redactor`` does so lazily.
No spaCy model is loaded: the analyzer has a no-op NLP engine and an explicit registry, so nothing
is downloaded. The e-mail recognizer's public-suffix check uses tldextract's bundled snapshot.
"""

from __future__ import annotations

import logging
import os
import threading

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")  # before presidio: no fetch of the suffix list

import warnings

with warnings.catch_warnings():  # jieba 0.42 imports pkg_resources; spaCy (under presidio) an old click API
    warnings.simplefilter("ignore", DeprecationWarning)
    import jieba
    import jieba.posseg
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IpRecognizer,
        MacAddressRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

from .patterns import CN_COMPOUND_SURNAMES, CN_SURNAMES, CN_TITLES, EN_RULES, ZH_RULES, Rule, zh_address_at

PHONE_REGIONS = ("US", "GB", "CN", "DE", "FR", "IN", "CA", "AU", "JP", "KR", "HK", "TW", "SG")
_PLACE_FLAGS = ("ns", "nsf")
_NAME_FLAGS = ("nr", "nrf", "nrfg", "nrt")
_jieba_lock = threading.Lock()


class RuleRecognizer(EntityRecognizer):
    """Our regular-expression rules (patterns.py) as one presidio recognizer."""

    def __init__(self, rules: tuple[Rule, ...], language: str):
        self.rules = rules
        super().__init__(sorted({r.type for r in rules}), name=f"edgellm-rules-{language}", supported_language=language)

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        return [
            RecognizerResult(rule.type, start, end, rule.score)
            for rule in self.rules
            if rule.type in entities
            for start, end in rule.find(text)
        ]


class JiebaRecognizer(EntityRecognizer):
    """Chinese person names and postal addresses from one jieba part-of-speech pass.

    A name is a person-name token (nr) whose first character is a common surname, joined with a title
    that follows (王 + 先生). An address starts at a place-name token (ns) and runs through streets,
    house and room numbers (patterns.zh_address_at).
    """

    def __init__(self):
        super().__init__(["PERSON", "ADDRESS"], name="edgellm-jieba-zh", supported_language="zh")

    def load(self) -> None:
        with _jieba_lock:
            if not jieba.dt.initialized:
                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()

    def analyze(self, text, entities, nlp_artifacts=None):
        results, pos, address_end = [], 0, 0
        tokens = [(word, flag) for word, flag in jieba.posseg.cut(text)]
        for i, (word, flag) in enumerate(tokens):
            start, pos = pos, pos + len(word)
            if start < address_end:
                continue
            if "ADDRESS" in entities and flag in _PLACE_FLAGS:
                end = zh_address_at(text, start)
                if end > start:
                    results.append(RecognizerResult("ADDRESS", start, end, 0.6))
                    address_end = end
                    continue
            if "PERSON" in entities and flag in _NAME_FLAGS and _surname_first(word):
                end = pos
                following = tokens[i + 1][0] if i + 1 < len(tokens) else ""
                if following in CN_TITLES:
                    end += len(following)
                elif len(word) == 1:
                    continue  # a lone surname without a title is not a name
                results.append(RecognizerResult("PERSON", start, end, 0.5))
        return results


def _surname_first(word: str) -> bool:
    if len(word) == 2 and word[0] == word[1]:
        return False  # a doubled character (谢谢, 常常) is a word, not surname + given name
    return word[0] in CN_SURNAMES or word.startswith(CN_COMPOUND_SURNAMES)


def presidio_recognizers(language: str) -> list[EntityRecognizer]:
    shared: list[EntityRecognizer] = [
        EmailRecognizer(supported_language=language),
        IpRecognizer(supported_language=language),
        MacAddressRecognizer(supported_language=language),
        PhoneRecognizer(supported_language=language, supported_regions=PHONE_REGIONS),
        CreditCardRecognizer(supported_language=language),
    ]
    if language == "en":
        return [*shared, UsSsnRecognizer(), RuleRecognizer(EN_RULES, "en")]
    return [*shared, RuleRecognizer(ZH_RULES, "zh"), JiebaRecognizer()]


def build_analyzer(languages: tuple[str, ...]) -> AnalyzerEngine:
    """A pattern-only AnalyzerEngine for ``languages`` (never loads or downloads a spaCy model)."""
    registry = RecognizerRegistry(supported_languages=list(languages))
    for language in languages:
        for recognizer in presidio_recognizers(language):
            recognizer.load()
            registry.add_recognizer(recognizer)
    nlp = NoOpNlpEngine(models=[{"lang_code": lang, "model_name": "none"} for lang in languages])
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=list(languages))
