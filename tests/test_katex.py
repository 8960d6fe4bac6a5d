"""Markdown that GitHub renders: every math span of every golden Markdown derivation typeset
with KaTeX (the npm package; scripts/test installs it into .venv/node when node is there).

Display math is a ```math block and inline math a $`...`$ span, the two forms GitHub's
Markdown leaves alone before its math renderer sees them; a bare $...$ or $$ is refused.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from symbackprop import derive, parse_arch

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "generated" / "derivations"
KATEX = ROOT / ".venv" / "node" / "node_modules" / "katex"
DISPLAY = re.compile(r"^```math\n(.*?)\n```$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"\$`([^`\n]+)`\$")

# Typesets each span of a JSON list read from stdin; prints each one's error, or null.
_RENDER = """
const katex = require(process.argv[1]);
let input = "";
process.stdin.on("data", d => input += d);
process.stdin.on("end", () => {
  const out = JSON.parse(input).map(([tex, display]) => {
    try { katex.renderToString(tex, {displayMode: display, throwOnError: true,
                                     strict: "error"}); return null; }
    catch (e) { return String(e.message); }
  });
  process.stdout.write(JSON.stringify(out));
});
"""


def spans(text: str) -> list[tuple[str, bool]]:
    """(LaTeX, is display) of every math span of a Markdown document."""
    out = [(m.group(1), True) for m in DISPLAY.finditer(text)]
    rest = DISPLAY.sub("", re.sub(r"^```(?!math).*?^```$", "", text,
                                  flags=re.MULTILINE | re.DOTALL))
    out += [(m.group(1), False) for m in INLINE.finditer(rest)]
    return out


def katex_errors(items) -> list[tuple[str, str]]:
    if shutil.which("node") is None:
        pytest.skip("node is not installed, so KaTeX cannot typeset the Markdown "
                    "(apt-get install nodejs npm; scripts/test then installs katex)")
    assert KATEX.is_dir(), ("katex is needed: npm install --prefix .venv/node katex@0.16 "
                            "(scripts/test does this)")
    result = subprocess.run(["node", "-e", _RENDER, str(KATEX)],
                            input=json.dumps(items), capture_output=True, text=True,
                            timeout=300, check=True)
    return [(tex, error) for (tex, _), error in zip(items, json.loads(result.stdout)) if error]


def _documents():
    return sorted(GOLDEN.glob("*.md"))


def test_every_math_span_of_every_golden_markdown_typesets_in_katex():
    items = []
    for path in _documents():
        text = path.read_text(encoding="utf-8")
        # No form GitHub's Markdown would mangle: $$ displays, bare $...$ inline math.
        assert "$$" not in text, path.name
        outside = INLINE.sub("", DISPLAY.sub("", text))
        assert "$" not in re.sub(r"`[^`\n]*`", "", outside), path.name
        items += spans(text)
    assert len(items) > 1000
    errors = katex_errors(items)
    assert not errors, errors[:5]


@pytest.mark.parametrize("spec,loss,notation", [
    ("3-4:softsign-3:leaky_relu-2:log_softmax", "nll", "rowvec"),
    ("3-4:gelu-2:identity", "huber", "ng"),
    ("2x5x5-conv2k3:relu-maxpool2s1-flatten-3:softmax", "cross_entropy", "rowvec"),
    ("seq4x2-rnn3:relu:all-2:sigmoid", "bce", "ng")])
def test_markdown_of_other_networks_typesets_in_katex(spec, loss, notation):
    """Networks with no golden file (other activations, losses, both kinds of feature
    layer), written now."""
    text = derive(parse_arch(spec, loss), notation).to_markdown()
    items = spans(text)
    assert items
    errors = katex_errors(items)
    assert not errors, errors[:5]


def test_a_katex_error_is_caught():
    """The check fails on what KaTeX cannot typeset (an environment it does not know)."""
    errors = katex_errors([(r"\begin{align} x \end{align}", False), (r"\frac{1}{2}", True)])
    assert [tex for tex, _ in errors] == [r"\begin{align} x \end{align}"]
