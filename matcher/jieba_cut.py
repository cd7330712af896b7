"""jieba's search-mode cut (``lcut_for_search``, HMM on), block by block, memoised, with a leaner route.

jieba splits a text into blocks (runs of Han characters, letters and digits; every other character alone)
and segments each block on its own, so cutting the blocks apart gives the same tokens; product and scope
phrases repeat across firms (有色金属压延加工, 金属材料销售), so a repeated block costs one look-up. A new
block is cut like ``Tokenizer.__cut_DAG``: the most probable route through the dictionary words it contains,
then the HMM over runs of characters no word covers; the route is found in one right-to-left pass without
building the word DAG, and each word's log probability is computed once. Same tokens as jieba's own cut
(``tests/test_update_cost.py`` compares them), at about half the cost for a new block.

The dictionary must be fixed before the first cut (:func:`matcher.text._jieba` adds the catalogue's words at
start-up and never again), so memoised blocks and probabilities never go stale.
"""

from __future__ import annotations

from math import log
from typing import Any

__all__ = ["SearchCutter"]

MAX_CACHED_BLOCKS = 200_000


class SearchCutter:
    """``jieba.lcut_for_search`` for one initialised jieba module whose dictionary no longer changes."""

    def __init__(self, jieba_module: Any) -> None:
        self._jieba = jieba_module
        tk = jieba_module.dt
        tk.check_initialized()
        self._freq: dict[str, int] = tk.FREQ
        self._logtotal = log(tk.total)
        self._logp: dict[str, float] = {}  # word -> log(freq or 1) - log(total), as jieba's route scores it
        self._hmm = jieba_module.finalseg.cut
        self._blocks: dict[str, tuple[str, ...]] = {}
        self._unknown: dict[str, tuple[str, ...]] = {}  # runs no dictionary word covers -> HMM words
        self._expanded: dict[str, tuple[str, ...]] = {}  # a long word -> its search-mode tokens

    def __call__(self, text: str) -> list[str]:
        """The search-mode tokens of ``text``."""
        out: list[str] = []
        han = self._jieba.re_han_default
        for block in han.split(text):
            if not block:
                continue
            toks = self._blocks.get(block)
            if toks is None:
                toks = tuple(self._search(self._cut(block))) if han.match(block) else tuple(
                    self._jieba.lcut_for_search(block)
                )
                if len(self._blocks) >= MAX_CACHED_BLOCKS:
                    self._blocks.clear()
                    self._unknown.clear()
                    self._expanded.clear()
                self._blocks[block] = toks
            out.extend(toks)
        return out

    def _cut(self, s: str) -> list[str]:
        """``Tokenizer.__cut_DAG(s)`` for one Han block."""
        freq, logp, logtotal = self._freq, self._logp, self._logtotal
        n = len(s)
        score = [0.0] * (n + 1)
        end = list(range(n + 1))
        for k in range(n - 1, -1, -1):
            best = None
            i, frag = k, s[k]
            while i < n and frag in freq:  # jieba's DAG: every word of the dictionary starting at k
                if freq[frag]:
                    p = logp.get(frag)
                    if p is None:
                        p = logp[frag] = log(freq[frag]) - logtotal
                    sc = p + score[i + 1]
                    if best is None or sc >= best:  # max over (score, end): a tie goes to the longer word
                        best, end[k] = sc, i
                i += 1
                frag = s[k : i + 1]
            if best is None:  # no word starts here: the character alone (log(freq or 1))
                ch = s[k]
                p = logp.get(ch)
                if p is None:
                    p = logp[ch] = log(freq.get(ch) or 1) - logtotal
                best, end[k] = p + score[k + 1], k
            score[k] = best
        words: list[str] = []
        buf = ""
        x = 0
        while x < n:
            y = end[x] + 1
            if y - x == 1:
                buf += s[x]
            else:
                if buf:
                    words += self._flush(buf)
                    buf = ""
                words.append(s[x:y])
            x = y
        if buf:
            words += self._flush(buf)
        return words

    def _flush(self, buf: str) -> tuple[str, ...] | list[str] | str:
        """A run of single characters: itself, its characters (a dictionary word), or the HMM's words."""
        if len(buf) == 1:
            return [buf]
        if self._freq.get(buf):
            return buf  # its characters, one by one
        got = self._unknown.get(buf)
        if got is None:
            got = self._unknown[buf] = tuple(self._hmm(buf))
        return got

    def _search(self, words: list[str]) -> list[str]:
        """``Tokenizer.cut_for_search``'s expansion: a long word's dictionary 2- and 3-grams, then it."""
        freq, memo = self._freq, self._expanded
        out: list[str] = []
        for w in words:
            if len(w) <= 2:
                out.append(w)
                continue
            got = memo.get(w)
            if got is None:
                grams = [w[i : i + 2] for i in range(len(w) - 1) if freq.get(w[i : i + 2])]
                if len(w) > 3:
                    grams += [w[i : i + 3] for i in range(len(w) - 2) if freq.get(w[i : i + 3])]
                got = memo[w] = (*grams, w)
            out += got
        return out
