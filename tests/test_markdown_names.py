"""A guard for the app's pages: a value that looks like a name someone else chose (a video, a path,
a folder, an error that quotes one) goes into a Markdown-rendering Streamlit call only through
core.words.markdown_literal or markdown_code (a name rendered as Markdown made a live link and a
remote image; a code review found five such calls after the first sweep). A heuristic over the
source: a new exception is reviewed and listed below with why it is safe."""
import ast
import re

from core.paths import ROOT

RENDERING = {"markdown", "caption", "info", "warning", "success", "error", "toast", "write", "subheader", "header",
             "title", "expander", "page_link", "table"}
NAME_LIKE = re.compile(r"relpath|name|path|source|root|dir|folder|error|warning|note|url|video|dataset|worst|picked|"
                       r"chosen|annotator", re.I)
ESCAPING = {"markdown_literal", "markdown_code", "counted", "len"}  # len: a number
REVIEWED = {  # (file, expression): why it is safe
    ("pages/review.py", "assertion_label(name)"): "the app's own name of an assertion: Flicker, Ghost or Class flip",
    ("pages/review.py", "FEWER_FLAGS[name]"): "the app's own advice per assertion, keyed by its own names",
    ("ui/url.py", "', '.join(ASSERTION_NAMES)"): "the app's own assertion names: flicker, ghost, class-flip",
}


def unescaped_names(tree: ast.AST):
    """(line, expression) of each formatted value in a rendering call's text that looks like a name
    and is not passed through an escaping helper."""
    def values(node):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ESCAPING:
            return
        if isinstance(node, ast.FormattedValue):
            text = ast.unparse(node.value)
            escaped = any(isinstance(n, ast.Call) and getattr(n.func, "id", "") in ESCAPING for n in ast.walk(node.value))
            if NAME_LIKE.search(text) and not escaped:
                yield node.lineno, text
        for child in ast.iter_child_nodes(node):
            yield from values(child)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RENDERING:
            for argument in [*node.args, *(k.value for k in node.keywords if k.arg in ("label", "body"))]:
                yield from values(argument)


def test_names_reach_markdown_only_escaped():
    found = [(str(path.relative_to(ROOT)), line, text) for folder in ("pages", "ui", "app.py")
             for path in sorted((ROOT / folder).rglob("*.py") if (ROOT / folder).is_dir() else [ROOT / folder])
             for line, text in unescaped_names(ast.parse(path.read_text()))]
    unreviewed = [f"{file}:{line}: {{{text}}}" for file, line, text in found if (file, text) not in REVIEWED]
    assert not unreviewed, "pass these through markdown_literal / markdown_code, or review and list them:\n" + "\n".join(unreviewed)
    assert set(REVIEWED) <= {(file, text) for file, _, text in found}, "a reviewed exception is gone: drop it from the list"
