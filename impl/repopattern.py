"""Repository patterns: the one place where a glob over repository names is compiled.

Every configuration key that selects repositories by pattern (``http.accessControl``
repositories, ``storage.retention`` policies' ``repositories``, and every later feature) takes
a :data:`RepositoryPattern`, so one pattern selects one set of repositories wherever it is
written, and a malformed one is refused with its key path by ``ocireg verify`` and at start-up.

The rules are doublestar's (``github.com/bmatcuk/doublestar/v4``), which zot uses for both
access control and retention:

* ``*`` is any run of characters other than ``/``; ``?`` is one such character;
* ``**`` as a whole path segment is zero or more segments (``a/**`` matches ``a`` and
  ``a/b/c``; ``**/c`` matches ``c``; ``a/**/b`` matches ``a/b``); inside a segment it is ``*``;
* ``[abc]``, ``[a-z]``, ``[!a-z]`` and ``[^a-z]`` are one character (never ``/``); ``-`` first
  or last is itself; ``\\`` escapes inside a class too;
* ``{a,b}`` is either alternative; alternatives may hold ``/``, nest, or be empty (``a{,bc}``);
  ``{a}`` is a group of one; there is no ``{1..3}`` sequence;
* ``\\`` makes the next character literal;
* a pattern matches the whole name.

Malformed, refused: an unclosed ``[`` or ``{``, an empty class (``[]``, so ``[]a]`` too, as in
doublestar), a trailing ``\\``. Stricter than doublestar: a reversed range (``[z-a]``, which can
match nothing) is refused too, and so is a pattern of more than :data:`MAX_ALTERNATIVES`
alternatives once braces are expanded.

Why our own and not ``wcmatch`` (``GLOBSTAR | BRACE``): the table in
``tests/test_repopattern.py`` runs doublestar's documented cases against this module; with
wcmatch 12 five kinds of case differ. ``a/**`` does not match ``a``; ``{a/*}`` (one
alternative) is taken literally; ``{1..3}`` expands to a sequence doublestar does not know;
``[]a]`` is a class holding ``]``; and a malformed pattern is never an error (an unclosed ``[``
is a literal), so ``ocireg verify`` could not refuse it. Each would make a zot configuration
select other repositories here than in zot.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

MAX_ALTERNATIVES = 256


class PatternError(ValueError):
    """A malformed repository pattern; the message names the pattern and the fault."""


def check(pattern: str) -> str:
    """``pattern`` itself when it compiles; PatternError naming the fault otherwise."""
    compile_pattern(pattern)
    return pattern


# The type of every configuration value that is a repository pattern.
RepositoryPattern = Annotated[str, AfterValidator(check)]


def matches(pattern: str, repository: str) -> bool:
    """Whether ``pattern`` (already checked) selects ``repository``."""
    return compile_pattern(pattern).fullmatch(repository) is not None


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regular expression ``pattern`` stands for (use ``fullmatch``)."""
    alternatives = _expand_braces(pattern, pattern)
    if len(alternatives) > MAX_ALTERNATIVES:
        raise PatternError(
            f"pattern {pattern!r}: {len(alternatives)} alternatives once braces are expanded, "
            f"more than {MAX_ALTERNATIVES}"
        )
    bodies = sorted({_path_regex(alternative, pattern) for alternative in alternatives})
    return re.compile("|".join(bodies) if len(bodies) == 1 else f"(?:{'|'.join(bodies)})")


def _expand_braces(text: str, pattern: str) -> list[str]:
    """Brace-free patterns equivalent to ``text``; escapes and classes are kept as written."""
    start = _next_brace(text)
    if start < 0:
        return [text]
    end, choices = _brace_group(text, start, pattern)
    rests = _expand_braces(text[end + 1 :], pattern)
    expanded: list[str] = []
    for choice in choices:
        for inner in _expand_braces(choice, pattern):
            expanded += [text[:start] + inner + rest for rest in rests]
            if len(expanded) > MAX_ALTERNATIVES:
                return expanded  # the caller refuses it; no need to build the rest
    return expanded


def _next_brace(text: str) -> int:
    """Index of the first ``{`` outside escapes and classes, or -1."""
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == "[":
            close = _class_end(text, i)
            i = close + 1 if close >= 0 else len(text)  # unclosed: compiling says so
        elif text[i] == "{":
            return i
        else:
            i += 1
    return -1


def _brace_group(text: str, start: int, pattern: str) -> tuple[int, list[str]]:
    """The index of the ``}`` closing the group at ``start``, and its alternatives."""
    depth, i, cut = 0, start, start + 1
    choices: list[str] = []
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == "[" and (close := _class_end(text, i)) >= 0:
            i = close + 1
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i, [*choices, text[cut:i]]
        elif char == "," and depth == 1:
            choices.append(text[cut:i])
            cut = i + 1
        i += 1
    raise PatternError(f"pattern {pattern!r}: unclosed '{{'")


def _class_end(text: str, start: int) -> int:
    """Index of the ``]`` that closes the class opened at ``start``, or -1."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == "]":
            return i
        else:
            i += 1
    return -1


def _path_regex(alternative: str, pattern: str) -> str:
    """The regular expression of one brace-free pattern, segment by segment."""
    segments = _split_segments(alternative)
    collapsed: list[str] = []
    for segment in segments:  # "**/**" is "**": collapsing keeps the joins below simple
        if not (segment == "**" and collapsed[-1:] == ["**"]):
            collapsed.append(segment)
    out: list[str] = []
    for index, segment in enumerate(collapsed):
        if segment == "**":
            if index == 0:  # "**" alone is anything; "**/rest" is rest under any prefix
                out.append(".*" if len(collapsed) == 1 else "(?:.*/)?")
            else:  # "a/**" and "a/**/b": the slash before the "**" goes with it
                out.append("(?:/.*)?")
            continue
        if index > 0 and not (index == 1 and collapsed[0] == "**"):
            out.append("/")
        out.append(_segment_regex(segment, pattern))
    return "".join(out)


def _split_segments(text: str) -> list[str]:
    """``text`` split at each ``/`` that is not escaped."""
    segments, current, i = [], "", 0
    while i < len(text):
        if text[i] == "\\":
            current += text[i : i + 2]
            i += 2
        elif text[i] == "/":
            segments.append(current)
            current, i = "", i + 1
        else:
            current += text[i]
            i += 1
    return [*segments, current]


def _segment_regex(segment: str, pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "\\":
            if i + 1 == len(segment):
                raise PatternError(f"pattern {pattern!r}: ends with an escape")
            out.append(re.escape(segment[i + 1]))
            i += 2
        elif char == "*":
            while segment.startswith("*", i):  # "**" inside a segment is "*"
                i += 1
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
            i += 1
        elif char == "[":
            i = _class_regex(segment, i, pattern, out)
        else:
            out.append(re.escape(char))
            i += 1
    return "".join(out)


def _class_regex(segment: str, start: int, pattern: str, out: list[str]) -> int:
    """Append the regex of the class at ``start``; return the index after its ``]``."""
    i = start + 1
    negated = segment[i : i + 1] in ("!", "^")
    i += negated
    items: list[str] = []
    while i < len(segment) and segment[i] != "]":
        low, i = _class_char(segment, i, pattern)
        if segment[i : i + 1] == "-" and segment[i + 1 : i + 2] not in ("", "]"):
            high, i = _class_char(segment, i + 1, pattern)
            if high < low:
                raise PatternError(f"pattern {pattern!r}: range {low}-{high} is reversed")
            items.append(f"{_in_class(low)}-{_in_class(high)}")
        else:
            items.append(_in_class(low))
    if i == len(segment):
        raise PatternError(f"pattern {pattern!r}: unclosed '['")
    if not items:
        raise PatternError(f"pattern {pattern!r}: empty '[]'")
    body = "".join(items)
    out.append(f"[^/{body}]" if negated else f"(?!/)[{body}]")
    return i + 1


def _class_char(segment: str, i: int, pattern: str) -> tuple[str, int]:
    """The (unescaped) character at ``i`` of a class, and the index after it."""
    if segment[i] != "\\":
        return segment[i], i + 1
    if i + 1 == len(segment):
        raise PatternError(f"pattern {pattern!r}: ends with an escape")
    return segment[i + 1], i + 2


def _in_class(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char
