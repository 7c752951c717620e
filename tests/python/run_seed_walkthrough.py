"""Runs the seed's doctest walk-through (seed_walkthrough.txt) against the pvengine package.

seed_walkthrough.txt is lines 66-120 of the seed's API text (pyrovelocity-models-api.txt) with only
the three `from pyrovelocity...` import lines changed to `from pvengine...`; when the seed file is
given (second argument) and exists, this is checked first.

The seed is written for xdoctest, which reads a `>>>` line that continues a statement (the body
of `try:`) as part of that statement; the standard doctest module wants `...` there. So the
examples are regrouped the way xdoctest groups them (an indented line, or one starting with
except/else/elif/finally, continues the previous statement), then run by doctest.DocTestRunner.
The seed states no expected output, so printed output is accepted (and echoed to the log);
an exception fails the example.

Usage: run_seed_walkthrough.py WALKTHROUGH.txt [SEED_API.txt]. Exit 77 (skip) when numpy or
anndata is missing.
"""

import doctest
import os
import shutil
import sys

SEED_LINES = (66, 120)
CONTINUATION_KEYWORDS = ("except", "else", "elif", "finally")


def skip_without(*modules):
    for module in modules:
        try:
            __import__(module)
        except ImportError:
            print(f"SKIP: Python module {module} is not installed")
            sys.exit(77)


def check_against_seed(lines, seed_path):
    """The walk-through must be the seed's lines with only the import lines renamed."""
    with open(seed_path, encoding="utf-8") as stream:
        seed = stream.read().splitlines()[SEED_LINES[0] - 1:SEED_LINES[1]]
    if len(seed) != len(lines):
        sys.exit(f"FAIL: walk-through has {len(lines)} lines, the seed's lines {SEED_LINES} are {len(seed)}")
    for number, (ours, theirs) in enumerate(zip(lines, seed), start=SEED_LINES[0]):
        if ours == theirs:
            continue
        renamed = theirs.replace(">>> from pyrovelocity.", ">>> from pvengine.", 1)
        if not theirs.startswith(">>> from pyrovelocity.") or ours != renamed:
            sys.exit(f"FAIL: seed line {number} changed beyond its import:\n  seed: {theirs}\n  ours: {ours}")
    print(f"walk-through = seed lines {SEED_LINES[0]}-{SEED_LINES[1]} (imports renamed)")


def to_standard_doctest(lines):
    """Rewrites xdoctest-style `>>>` continuation lines as `...` lines."""
    out = []
    for line in lines:
        if line.startswith(">>>"):
            code = line[4:] if line.startswith(">>> ") else line[3:]
            continues = code[:1].isspace() or code.lstrip().split(" ")[0].rstrip(":") in CONTINUATION_KEYWORDS
            if continues and out and (out[-1].startswith(">>>") or out[-1].startswith("...")):
                out.append("... " + code)
                continue
        out.append(line)
    return "\n".join(out) + "\n"


class AnyOutputChecker(doctest.OutputChecker):
    """Accepts whatever an example prints when the text expects nothing; echoes it."""

    def check_output(self, want, got, optionflags):
        if not want.strip():
            if got:
                sys.__stdout__.write(got)
            return True
        return super().check_output(want, got, optionflags)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    skip_without("numpy", "anndata")
    with open(sys.argv[1], encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    if len(sys.argv) > 2 and os.path.exists(sys.argv[2]):
        check_against_seed(lines, sys.argv[2])
    source = to_standard_doctest(lines)
    globs = {"__name__": "seed_walkthrough"}
    test = doctest.DocTestParser().get_doctest(source, globs, "seed_walkthrough", sys.argv[1], 0)
    runner = doctest.DocTestRunner(checker=AnyOutputChecker(), optionflags=doctest.ELLIPSIS)
    try:
        result = runner.run(test)
    finally:
        model_path = globs.get("doctest_model_path")
        if model_path:  # the seed's temporary directory is gone by then; its files are not
            shutil.rmtree(os.path.dirname(model_path), ignore_errors=True)
    print(f"\nseed walk-through: {result.attempted} examples, {result.failed} failed")
    sys.exit(1 if result.failed or not result.attempted else 0)


if __name__ == "__main__":
    main()
