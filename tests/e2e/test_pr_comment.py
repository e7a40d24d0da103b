"""The PR comment a reviewer acts on, rendered as GitHub renders it and looked at in Chromium.

A stack is applied, then edited the way a pull request would: a description and labels
changed (with markdown, HTML and table syntax in them), a secret added whose reader's id is
hostile, one removed (a delete), and a stack policy with a hostile message that blocks. The
installed ``cloudsync plan --format markdown`` output (with the workflow's GITHUB_* variables)
is composed into the stack's comment by the shipped workflow's own step, rendered by GitHub's
own cmark-gfm (tables, tag filter) and opened in headless Chromium; the assertions are made on
the DOM Chromium built, not on strings.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cloudsync.plan.comment import GITHUB_COMMENT_LIMIT
from tests.conftest import CliResult, assert_no_canary, files_containing
from tests.e2e.test_workflows import run_steps, step_named

HOSTILE_DESCRIPTION = "*bold* _it_ `tick` | pipe <script>alert(1)</script> &amp; $x$ ~~s~~ [link](#x)"
HOSTILE_PRINCIPAL = "svc*api*_x_|<b>y</b>"
HOSTILE_MESSAGE = "regex ^shop/.*_[a-z]+_$ matched | <script>alert(2)</script> `x`"

HEADER = """\
version: 1
stack: shop
targets:
  local: {provider: local}
principals:
  api: {local: "@PRINCIPAL@"}
defaults:
  labels: {owner: team-shop}
  rotation: 30d
secrets:
""".replace("@PRINCIPAL@", HOSTILE_PRINCIPAL)

BEFORE = HEADER + """\
  - name: shop/db_main_
    description: plain
    targets: [local]
    labels: {env: dev}
    value: {env: SHOP_DB}
  - name: shop/old_one_
    targets: [local]
    value: {generate: {length: 40}}
"""

AFTER = HEADER + """\
  - name: shop/db_main_
    description: @DESCRIPTION@
    targets: [local]
    labels: {env: dev, team: a_b_c_}
    value: {env: SHOP_DB}
  - name: shop/new_one_
    description: "new <b>one</b> *x*"
    targets: [local]
    value: {generate: {length: 40}}
    readers: [api]
""".replace("@DESCRIPTION@", json.dumps(HOSTILE_DESCRIPTION))

POLICY = """\
policies:
  - id: EVIL1
    title: "Evil *title* <script>x</script>"
    severity: error
    rule: 'secret.name != "shop/new_one_"'
    message: @MESSAGE@
""".replace("@MESSAGE@", json.dumps(HOSTILE_MESSAGE))

GITHUB = {"GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_SERVER_URL": "https://github.com",
          "GITHUB_REPOSITORY": "acme/infra", "GITHUB_RUN_ID": "4242"}
RUN_URL = "https://github.com/acme/infra/actions/runs/4242"
COMMIT_URL = "https://github.com/acme/infra/commit/0123456789abcdef0123456789abcdef01234567"


@dataclass
class Outputs:
    stack: Path
    markdown: str
    json: dict[str, object]
    text: str
    comment: str  # the stack's PR comment as the shipped workflow composes it from the shard's report


def workflow_comment(cli: Callable[..., CliResult], stack: Path, env: dict[str, str], out: Path) -> str:
    """What cloudsync-plan.yml posts: its plan step's report for target ``local`` (with that step's
    own CLOUDSYNC_* settings and the runner's GITHUB_* variables), composed by its comment step."""
    plan_step = step_named("cloudsync-plan.yml", "plan", "plan")
    settings = {k: str(v) for k, v in plan_step["env"].items() if "${{" not in str(v)}
    shard = cli("plan", "-C", str(stack), "--format", "markdown", env={**env, **GITHUB, **settings})
    (out / "cloudsync-out" / "shop").mkdir(parents=True)
    (out / "cloudsync-out" / "shop" / "local.md").write_text(shard.stdout)
    (out / "cloudsync-out" / "shop" / "local.exitcode").write_text(f"{shard.code}\n")
    compose = step_named("cloudsync-plan.yml", "comment", "compose the comment")
    run_steps([compose], "comment", out, {"needs.targets.outputs.stack": "shop",
                                          "needs.targets.outputs.targets": "local"}, GITHUB)
    return (out / "cloudsync-out" / "shop" / "comment.md").read_text()


@pytest.fixture
def pull_request(cli: Callable[..., CliResult], write_stack: Callable[..., Path], canary: str,
                 tmp_path: Path) -> Iterator[Outputs]:
    stack = write_stack(BEFORE)
    env = {"SHOP_DB": canary}
    applied = cli("apply", "-C", str(stack), "--auto-approve", env=env)
    assert applied.code == 0, applied.output
    (stack / "cloudsync.yaml").write_text(AFTER)
    (stack / "policies").mkdir()
    (stack / "policies" / "evil.yaml").write_text(POLICY)
    md = cli("plan", "-C", str(stack), "--format", "markdown", env={**env, **GITHUB})
    js = cli("plan", "-C", str(stack), "--format", "json", env={**env, **GITHUB})
    text = cli("plan", "-C", str(stack), env=env)
    for result in (applied, md, js, text):
        assert "Traceback" not in result.stderr
        assert_no_canary(canary, result.stdout, result.stderr)
    assert md.code == js.code == text.code == 1  # EVIL1 blocks: the report is still printed
    comment = workflow_comment(cli, stack, env, tmp_path / "workflow")
    assert_no_canary(canary, comment)
    yield Outputs(stack, md.stdout, json.loads(js.stdout), text.stdout, comment)
    assert files_containing(stack, canary, skip=lambda p: p.name.startswith("local.db")) == []


def test_the_comment_leads_with_a_summary_the_refusal_and_the_deletes(pull_request: Outputs) -> None:
    md = pull_request.markdown
    lines = md.splitlines()
    assert lines[0] == "<!-- cloudsync:plan stack=shop -->"
    assert lines[3] == ("**stack** `shop` · **target** `local`: 1 to create, 1 to update, 1 to delete, 0 unchanged · "
                        "**policy**: 2 errors, 2 warnings")
    assert lines[5] == ("Commit [`0123456789ab`](https://github.com/acme/infra/commit/"
                        "0123456789abcdef0123456789abcdef01234567) · "
                        "[workflow run 4242](https://github.com/acme/infra/actions/runs/4242)")
    banner, deletes, folded = (md.index("Apply will be refused: 2 policy errors"), md.index("apply deletes 1 secret"),
                               md.index("<details>"))
    assert banner < deletes < folded  # what blocks and what is lost come before anything folded
    assert "`local:shop/old_one_` (soft delete, recoverable)" in md
    assert len(md) <= GITHUB_COMMENT_LIMIT


def test_plan_json_has_before_and_after_without_values(pull_request: Outputs, canary: str) -> None:
    changes = {c["address"]: c for c in pull_request.json["changes"]}  # type: ignore[attr-defined]
    update, create, delete = changes["local:shop/db_main_"], changes["local:shop/new_one_"], changes["local:shop/old_one_"]
    assert update["before"]["description"] == "plain" and update["after"]["description"] == HOSTILE_DESCRIPTION
    assert update["before"]["labels"] == {"env": "dev", "owner": "team-shop"}
    assert update["after"]["labels"] == {"env": "dev", "owner": "team-shop", "team": "a_b_c_"}
    assert update["after"]["value"]["written"] is False
    assert update["after"]["value"]["fingerprint"] == update["before"]["value"]["fingerprint"] is not None
    assert update["after"]["rotation"] == {"every": "30d", "by": "cloudsync"}
    assert create["before"] is None and create["after"]["readers"] == [HOSTILE_PRINCIPAL]
    assert create["after"]["value"] == {"written": True, "mode": "generate", "version": None, "fingerprint": None}
    assert delete["after"] is None and delete["before"]["value"]["version"]
    assert set(update["before"]) == set(update["after"])  # the same keys on both sides
    # Keys are only added: the contract's keys are all still there.
    assert {"address", "target", "provider", "secret", "remote_name", "action", "reasons"} <= set(update)
    assert canary not in json.dumps(pull_request.json)


def test_text_shows_both_sides_and_no_trailing_spaces(pull_request: Outputs) -> None:
    text = pull_request.text
    assert f'description: "plain" → {json.dumps(HOSTILE_DESCRIPTION)}' in text
    assert 'labels: team: (none) → "a_b_c_"' in text
    assert "readers: " + HOSTILE_PRINCIPAL in text  # what a create sets is shown, not an empty line
    assert not [line for line in text.splitlines() if line != line.rstrip()]
    starts = {line.split()[1]: line.index("local:") for line in text.splitlines() if line[2:3] in "+~-^"
              and line.startswith("  ") and "local:" in line}
    assert set(starts) == {"update", "create", "delete"} and len(set(starts.values())) == 1


# --- in a browser ---------------------------------------------------------------------------------

VOID = {"br", "img", "hr", "input", "meta", "link", "col", "area", "base", "wbr", "source"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def all(self, tag: str) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                found += ([child] if child.tag == tag else []) + child.all(tag)
        return found

    def ancestors(self) -> list[str]:
        node, tags = self.parent, []
        while node is not None:
            tags.append(node.tag)
            node = node.parent
        return tags


class Tree(HTMLParser):
    """The DOM Chromium dumped, as a tree (enough to ask what is inside what)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def dom_tree(dom: str) -> Node:
    tree = Tree()
    tree.feed(dom)
    return tree.root


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>PR comment</title><style>
body {{ font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 24px;
       max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 8px 0; }} th, td {{ border: 1px solid #d0d7de; padding: 4px 10px; }}
th {{ background: #f6f8fa; }} code {{ background: #eff1f3; padding: 1px 4px; border-radius: 4px; font-size: 90%; }}
blockquote {{ border-left: 4px solid #d0d7de; margin: 8px 0; padding: 0 12px; color: #59636e; }}
details summary {{ cursor: pointer; font-weight: 600; }}
</style></head><body><div class="comment">{body}</div></body></html>"""


def github_html(markdown: str) -> str:
    """The comment as GitHub renders it: cmark-gfm with raw HTML allowed (GitHub then sanitises
    with an allow-list that keeps <details>) and the GFM tag filter (<script> is written as text)."""
    cmarkgfm = pytest.importorskip("cmarkgfm")
    from cmarkgfm.cmark import Options

    return str(cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE))


def test_the_comment_in_chromium(pull_request: Outputs, tmp_path: Path) -> None:
    from tests.browser import render

    page = tmp_path / "pr-comment.html"
    page.write_text(PAGE.format(body=github_html(pull_request.comment)), encoding="utf-8")
    shown = render(page, tmp_path, width=1200, height=1000)
    root = dom_tree(shown.dom)
    body = root.all("body")[0]

    # No markup from the files took effect: no script, no emphasis, strike-through, image or math.
    for tag in ("script", "em", "del", "img", "math"):
        assert body.all(tag) == [], f"<{tag}> in the rendered comment"
    strong = [s.text() for s in body.all("strong")]
    assert all(HOSTILE_DESCRIPTION not in s for s in strong)

    # The banner is visible: a block quote outside any <details>, with the blocking errors listed.
    quotes = [q for q in body.all("blockquote") if "Apply will be refused" in q.text()]
    assert len(quotes) == 1 and "details" not in quotes[0].ancestors()
    items = [li.text() for li in quotes[0].all("li")]
    assert len(items) == 2 and any(HOSTILE_MESSAGE in item for item in items)
    deletes = [q for q in body.all("blockquote") if "apply deletes 1 secret" in q.text()]
    assert deletes and "details" not in deletes[0].ancestors() and "local:shop/old_one_" in deletes[0].text()

    # Hostile text reads literally, and no "|" split a table cell.
    text = body.text()
    assert f'description: "plain" → {json.dumps(HOSTILE_DESCRIPTION)}' in text
    assert "readers: " + HOSTILE_PRINCIPAL in text and HOSTILE_MESSAGE in text
    tables = body.all("table")
    assert len(tables) == 2  # policy violations (folded) and changes (3 changes: open)
    for table in tables:
        widths = {len(row.all("td")) for row in table.all("tbody")[0].all("tr")}
        assert widths == {5}, f"a row with {widths} cells"
    changes = next(t for t in tables if "details" not in t.ancestors())
    for row in changes.all("tbody")[0].all("tr"):
        assert row.all("td")[4].text().strip() not in ("", "—"), "an empty details cell"

    # Links: the commit, the run, the declarations; nothing a file wrote became a link.
    hrefs = [a.attrs.get("href") or "" for a in body.all("a")]
    assert all(h.startswith("https://github.com/acme/infra/") for h in hrefs), hrefs
    # The commit and the run are linked exactly once, at the top of the comment: not again by the
    # target's own section.
    runs = [a for a in body.all("a") if a.attrs.get("href") == RUN_URL]
    commits = [a for a in body.all("a") if a.attrs.get("href") == COMMIT_URL]
    assert [a.text() for a in runs] == ["workflow run 4242"] and [a.text() for a in commits] == ["0123456789ab"]
    line = runs[0].parent
    assert line is not None and line.tag == "p" and line.parent is not None and "details" not in line.ancestors()
    sections = [h for h in line.parent.children if isinstance(h, Node) and h.tag == "h3"]
    assert sections and all(line.parent.children.index(line) < line.parent.children.index(h) for h in sections)
    assert shown.external_requests == []

    target = os.environ.get("UPDATE_DOCS_IMAGES")  # set to refresh docs/images/pr-comment.png
    if target:
        shutil.copy(shown.screenshot, Path(target) / "pr-comment.png")


def test_sarif_help_markdown_uses_the_same_escaping(pull_request: Outputs, cli: Callable[..., CliResult],
                                                     tmp_path: Path) -> None:
    result = cli("policy", "check", "-C", str(pull_request.stack), "--format", "sarif")
    rules = {r["id"]: r for r in json.loads(result.stdout)["runs"][0]["tool"]["driver"]["rules"]}
    html = github_html(rules["EVIL1"]["help"]["markdown"])
    root = dom_tree(f"<body>{html}</body>")
    assert root.all("script") == [] and root.all("em") == []
    assert "Evil *title* <script>x</script>" in root.text()
