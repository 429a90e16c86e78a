"""Find institution names in free text: exact variants in a character trie, leftmost-longest.

Names that differ by one ordinal or word (番禺区第二/第三人民医院, 广东省妇幼保健院 /
…互联网医院) are different keys here, never "similar": a fuzzy ratio would rank
them as near-identical.  Derived variants (the name without 广州市/广东省, or a
short alias) are *guarded*: they count only where the characters around them
do not show that a different, longer name is meant (花都区第一人民医院 is not
广州市第一人民医院).  Lookup cost depends on the text, not on the roster size.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.domain.deadline import check_deadline

_DROP = re.compile(r"[\s\u200b\u3000()（）\[\]【】〔〕「」『』《》〈〉\"'“”‘’·•]+")
_PREFIXES = ("广东省广州市", "广州市", "广东省")
# Characters that may stand right before a derived variant without naming another place or body.
_NEUTRAL_BEFORE = set("于的和与及是为在对由至从向给称即同、，。：；！？,.;:!?-—_/\\|>\n\t0123456789")
# Words a short alias must not be the start of (省医 in 省医学会, 中山三院 is fine).
_CONTINUES_WORD = set("学会科药疗生务界师大所协")
_GENERIC = {"人民医院", "中医医院", "中医院", "妇幼保健院", "医院", "卫生健康局", "社区卫生服务中心"}
MIN_DERIVED_CHARS = 5
SHORT_ALIAS_CHARS = 3


# Invisible characters that hide a name from matching: every format character (Unicode Cf: ZWSP,
# ZWNJ, ZWJ, U+2060, BOM, soft hyphen, bidi controls, tags …) and the variation selectors.
# Listed as ranges (Unicode 15); tests check the list against unicodedata.
_INVISIBLE = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufe00-\ufe0f\ufeff\ufff9-\ufffb\U000110bd\U000110cd\U00013430-\U0001343f"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f\U000e0100-\U000e01ef]+"
)


def normalise(text: str) -> str:
    """NFKC (full-width to half-width), no invisible characters, lower case, no spaces, brackets or
    quotes (both sides of a match use it)."""
    return _DROP.sub("", unicodedata.normalize("NFKC", _INVISIBLE.sub("", text))).lower()


@dataclass(frozen=True, slots=True)
class Variant:
    key: str  # the roster name (or "bureau:<district>") this variant names
    text: str  # normalised
    how: str  # name | alias | part | derived
    accept_before: str = ""  # for derived variants: the stripped prefix's last char (省 / 市)


@dataclass(frozen=True, slots=True)
class Mention:
    key: str
    start: int
    end: int
    how: str
    text: str


_END = "\0"


class NameIndex:
    """Variants of every name in a trie.  Add names, `freeze()`, then `find()` in normalised text."""

    def __init__(self) -> None:
        self._variants: dict[str, list[Variant]] = {}
        self._explicit: dict[str, set[str]] = {}  # variant text -> keys, for collision checks
        self._trie: dict = {}
        self._frozen = False

    def add(self, key: str, name: str, aliases: Iterable[str] = ()) -> None:
        if self._frozen:
            raise RuntimeError("NameIndex is frozen")
        full = normalise(name)
        self._put(Variant(key, full, "name"))
        for alias in aliases:
            text = normalise(alias)
            if text:
                self._put(Variant(key, text, "alias"))
        # "A（B）" names both A and B.
        for part in re.split(r"[（(]|[）)]", name):
            part_text = normalise(part)
            if part_text and part_text != full and len(part_text) >= MIN_DERIVED_CHARS:
                self._put(Variant(key, part_text, "part"))
        for base in {full, *(normalise(p) for p in re.split(r"[（(]|[）)]", name) if p.strip())}:
            for prefix in _PREFIXES:
                if base.startswith(prefix):
                    rest = base[len(prefix) :]
                    if len(rest) >= MIN_DERIVED_CHARS - 1 and rest not in _GENERIC:
                        self._put(Variant(key, rest, "derived", accept_before=prefix[-1]))
                    break

    def _put(self, variant: Variant) -> None:
        bucket = self._variants.setdefault(variant.text, [])
        if any(v.key == variant.key for v in bucket):
            return
        bucket.append(variant)
        if variant.how != "derived":
            self._explicit.setdefault(variant.text, set()).add(variant.key)

    def freeze(self) -> None:
        """Build the trie.  Derived variants claimed by two keys are dropped (they would be guesses)."""
        for text, bucket in self._variants.items():
            keys = {v.key for v in bucket}
            chosen = [v for v in bucket if v.how != "derived"] if len(keys) > 1 else bucket
            if not chosen:
                continue
            node = self._trie
            for ch in text:
                node = node.setdefault(ch, {})
            node[_END] = tuple(chosen)
        self._frozen = True

    def collisions(self) -> list[str]:
        """Explicit names/aliases that point at two different keys (an error in the data files)."""
        return [f"{text} → {' / '.join(sorted(keys))}" for text, keys in self._explicit.items() if len(keys) > 1]

    def lookup_exact(self, normalised: str) -> list[str]:
        return sorted({v.key for v in self._variants.get(normalised, [])})

    def find(self, text: str, *, normalised: bool = False) -> list[Mention]:
        """Every guarded, leftmost-longest mention of a known name in `text`."""
        check_deadline()  # called per line: the attribution of one message stops when its time is up
        norm = text if normalised else normalise(text)
        found: list[Mention] = []
        i, n = 0, len(norm)
        trie = self._trie
        while i < n:
            node = trie.get(norm[i])
            if node is None:
                i += 1
                continue
            best: tuple[int, tuple[Variant, ...]] | None = None
            j = i + 1
            while True:
                terminal = node.get(_END)
                if terminal is not None:
                    accepted = tuple(v for v in terminal if _guard_ok(v, norm, i, j))
                    if accepted:
                        best = (j, accepted)
                if j >= n:
                    break
                node = node.get(norm[j])
                if node is None:
                    break
                j += 1
            if best is None:
                i += 1
                continue
            end, variants = best
            for v in variants:
                found.append(Mention(v.key, i, end, v.how, norm[i:end]))
            i = end
        return found


def _guard_ok(variant: Variant, text: str, start: int, end: int) -> bool:
    if variant.how == "derived":
        if start == 0:
            return True
        before = text[start - 1]
        return before in _NEUTRAL_BEFORE or before == variant.accept_before or not _is_cjk(before)
    if variant.how == "alias" and len(variant.text) <= SHORT_ALIAS_CHARS:
        after = text[end] if end < len(text) else ""
        before = text[start - 1] if start else ""
        return after not in _CONTINUES_WORD and not (before and _is_cjk(before) and before not in _NEUTRAL_BEFORE)
    return True


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"
