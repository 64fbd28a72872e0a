"""Sentences of a legal text: never cut inside an abbreviation, a reference or an enumeration.

Why a splitter of our own: a full stop in Danish and EU law is as often an
abbreviation ("stk.", "nr.", "jf.", "f.eks.", "e.g.", "p.") or an ordinal
("2. august 2026", "1. pkt.") as a sentence end, and a provision's points
("1) ...", "(a) ...", "— ...") are one sentence with their introduction. An
answer that stops at "nærværende artikels stk." or at "genoptage
tilbudsevalueringen, når" is not read further by a lawyer.

The rules, all on the text as the parsers wrote it (one line per paragraph or point):
- inside a line, a sentence ends at ".", "!" or "?" (and closing quotes or brackets) followed by
  a capital letter, "§" or an opening quote; not after an abbreviation that never ends a
  sentence (NON_FINAL), and not while the sentence is still only a marker ("2.1.", "Stk. 2.");
- a line ends a sentence only when it ends with ".", "!" or "?" (or ";" before a line that
  starts a new sentence), or when it is a heading (no end mark, the next line starts anew);
  a line ending in ":", ",", a bare number, an abbreviation or a function word goes on;
- an introduction ending in ":" keeps every point that follows it, whatever the points end with.

`split_sentences(text)` gives sentences whose concatenation is the text (modulo whitespace), each
with its own line breaks, so a point stays on its own line when quoted.
"""

from __future__ import annotations

import re

# Abbreviations that never end a sentence (compared without their final ".", case-insensitively unless
# listed in _CASED). Ambiguous ones that do end sentences in the corpus ("m.v.", "mv.", "pkt.", "pct.", "kr.",
# "osv.", "etc.", "art." as in "state of the art.") are in MAY_END: they end one only before a capital letter.
NON_FINAL = frozenset(
    {
        # Danish
        "stk", "nr", "nrs", "jf", "jfr", "jvf", "f.eks", "bl.a", "dvs", "d.v.s", "ca", "evt", "iht", "i.h.t", "pga",
        "p.g.a", "hhv", "mht", "m.h.t", "vedr", "inkl", "ekskl", "kap", "lit", "pr", "kl", "tlf", "sml", "s", "bek",
        "lbk", "ang", "ifm", "i.f.m", "alm", "gl", "t.o.m", "f.o.m",
        # English and EU
        "e.g", "i.e", "cf", "viz", "p", "pp", "para", "paras", "no", "nos", "vol", "ed", "eds", "approx", "incl",
        "resp", "fig", "ch", "sec", "subpara", "et al", "v", "vs", "mr", "mrs", "ms", "dr", "prof", "st", "u.s",
    }
)
_CASED = frozenset({"Art", "Arts", "Reg", "Dir", "OJ"})  # abbreviations only when capitalised: "Art. 5", "Reg. (EU)"
MAY_END = frozenset({"m.v", "mv", "m.m", "mm", "o.l", "osv", "etc", "pkt", "pct", "kr", "art", "mio", "mia"})

# Lines that are points of an enumeration: 1) a) (a) (iv) 2.1. a. — – • and the PDF's check marks.
POINT = re.compile(
    r"^(?:\(?\d{1,3}[a-z]?\)|\(?[a-zæøå]{1,2}\)|\(?[ivxlcdm]{1,6}\)|\d{1,3}(?:\.\d{1,3})*\.(?=\s)|[a-zæøå]\.(?=\s)"
    r"|[—–\-•·▪*\uf0b7\uf0a7\uf0fc])\s*"
)
_CLOSERS = "\"'”’»«)]"
_END = re.compile(rf"[.!?][{re.escape(_CLOSERS)}]*(?=\s+[A-ZÆØÅÄÖÜÉ§“\"«„‘])")
_TOKEN_BEFORE = re.compile(r"(\S+)$")
_NUMBER_END = re.compile(r"\d[\d.,/]*$")
# A line ending in one of these is cut by a page or a wrap, not by the end of a sentence.
_FUNCTION_WORDS = frozenset(
    {
        "the", "a", "an", "of", "to", "in", "on", "for", "and", "or", "by", "with", "from", "as", "at", "that",
        "which", "is", "are", "be", "under", "its", "their", "this", "these", "those", "such", "any", "into",
        "og", "eller", "i", "af", "til", "på", "med", "den", "det", "de", "en", "et", "som", "der", "at", "ved",
        "om", "fra", "efter", "samt", "hvis", "når", "jf", "mv", "for", "ikke", "skal", "kan",
    }
)


def _bare(token: str) -> str:
    """A token as the abbreviation lists hold it: leading brackets and quotes off, the final '.' off."""
    return token.lstrip("([{“\"'‘«»").rstrip(".")


def is_abbreviation(token: str) -> bool:
    """Whether `token` (the word before a full stop, with or without it) never ends a sentence."""
    bare = _bare(token)
    return bare.casefold() in NON_FINAL or bare in _CASED


def _stop_ends_sentence(before: str, sentence_so_far: str) -> bool:
    """Whether the full stop after `before` (the line up to it) ends a sentence that began with `sentence_so_far`."""
    match = _TOKEN_BEFORE.search(before)
    if not match:
        return False
    token = match.group(1)
    if is_abbreviation(token):
        return False
    words = sentence_so_far.split()
    if len(words) < 3:  # still a marker or a label: "2.1.", "Stk. 2.", "Section A."
        return False
    return True


def _line_ends_sentence(line: str) -> bool:
    """Whether a line's last mark ends a sentence (., !, ?) rather than an abbreviation."""
    body = line.rstrip(_CLOSERS + " ")
    if not body or body[-1] not in ".!?":
        return False
    if body[-1] == ".":
        token = _TOKEN_BEFORE.search(body[:-1] + ".")
        if token and is_abbreviation(token.group(1)):
            return False
    return True


def _point_content(line: str) -> str:
    match = POINT.match(line)
    return line[match.end() :] if match else line


def _continues(line: str, following: str) -> bool:
    """Whether the sentence running at the end of `line` goes on into `following` (outside an enumeration)."""
    if _line_ends_sentence(line):
        return False
    body = line.rstrip(_CLOSERS + " ")
    last = body[-1] if body else ""
    starts_lower = following[:1].islower()
    if last == ":" or last == ",":
        return True
    words = body.split()
    if _NUMBER_END.search(body) or (words and (is_abbreviation(words[-1]) or words[-1].casefold() in _FUNCTION_WORDS)):
        return True
    if POINT.match(following):
        content = _point_content(following)
        dash = following[:1] in "—–-•·▪*\uf0b7\uf0a7\uf0fc"
        return dash or content[:1].islower() or last == ";"
    return starts_lower  # else a heading, a table row, a label (or ";" before a new sentence): the next line starts anew


def split_sentences(text: str) -> list[str]:
    """The sentences of a passage, in order; together they are the text (modulo whitespace)."""
    lines: list[tuple[int, int]] = []  # (start, end) offsets of the non-empty lines
    offset = 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        if stripped:
            start = offset + raw.index(stripped[0])
            lines.append((start, start + len(stripped)))
        offset += len(raw) + 1
    cuts: list[int] = []
    sentence_start = lines[0][0] if lines else 0
    in_list = False
    for i, (start, end) in enumerate(lines):
        line = text[start:end]
        if not (in_list and POINT.match(line)):
            for match in _END.finditer(line):
                stop = start + match.start()
                if _stop_ends_sentence(text[max(sentence_start, start) : stop], text[sentence_start:stop]):
                    cuts.append(start + match.end())
                    sentence_start = start + match.end()
        if i + 1 == len(lines):
            break
        following = text[lines[i + 1][0] : lines[i + 1][1]]
        if line.rstrip(_CLOSERS + " ").endswith(":") and POINT.match(following):
            in_list = True
        if in_list and POINT.match(following):
            continue
        if in_list and following[:1].islower():
            continue  # a point's wrapped line, or the closing words after the points ("shall, in addition, ...")
        in_list = False
        if not _continues(line, following):
            cuts.append(end)
            sentence_start = lines[i + 1][0]
    bounds = [0, *cuts, len(text)]
    out = [text[a:b].strip() for a, b in zip(bounds, bounds[1:])]
    return [s for s in out if s]


def ends_cleanly(sentence: str) -> bool:
    """Whether a sentence ends as a sentence may end: not in an abbreviation that never ends one, a bare number,
    a comma or a colon. The test of the splitter on every act, and the answerer's choice of what to quote, use it."""
    body = sentence.rstrip(_CLOSERS + " ")
    if not body:
        return False
    if body[-1] in ",:":
        return False
    if body[-1] == ".":
        token = _TOKEN_BEFORE.search(body)
        return not (token and is_abbreviation(token.group(1)))
    return sentence.rstrip()[-1:] in _CLOSERS or not _NUMBER_END.search(body)  # "(EUT L 312, s. 1)" is whole
