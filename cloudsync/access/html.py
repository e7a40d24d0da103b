"""The access report as one self-contained HTML file a security reviewer opens in a browser.

No external asset, no value, and a Content-Security-Policy that forbids the page from
loading anything: the inline style and script are all there is. Tables sort on a header
click and filter as you type; a checkbox keeps only undeclared readers.
"""

from __future__ import annotations

from html import escape

from cloudsync.access.model import AccessReport, SecretAccess
from cloudsync.access.render import _usage, shown, summary_line

_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
.meta{color:#59636e;margin-bottom:12px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #d1d9e0;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:22px}.card.bad b{color:#cf222e}
.controls{display:flex;gap:16px;align-items:center;margin:8px 0}
input[type=search]{padding:6px 8px;width:320px;border:1px solid #d1d9e0;border-radius:6px}
table{border-collapse:collapse;width:100%;margin-bottom:8px}
th,td{border:1px solid #d1d9e0;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa;cursor:pointer;user-select:none;white-space:nowrap}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
tr.undeclared td{background:#ffebe9}td.num{text-align:right}
code{font:12px ui-monospace,monospace;word-break:break-all}
.tag{display:inline-block;padding:0 6px;border-radius:10px;font-size:12px;background:#eaeef2}
.tag.bad{background:#cf222e;color:#fff}.tag.warn{background:#bf8700;color:#fff}
"""

_SCRIPT = """
(function(){
  function text(cell){return (cell.getAttribute('data-sort')||cell.textContent).trim();}
  document.querySelectorAll('table.sortable').forEach(function(table){
    table.querySelectorAll('th').forEach(function(th,index){
      th.addEventListener('click',function(){
        var asc=th.getAttribute('aria-sort')!=='ascending';
        table.querySelectorAll('th').forEach(function(o){o.removeAttribute('aria-sort');});
        th.setAttribute('aria-sort',asc?'ascending':'descending');
        var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
        rows.sort(function(a,b){
          var x=text(a.cells[index]),y=text(b.cells[index]);
          var nx=parseFloat(x),ny=parseFloat(y);
          var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:x.localeCompare(y);
          return asc?c:-c;});
        rows.forEach(function(r){body.appendChild(r);});
      });
    });
  });
  var box=document.getElementById('filter'),only=document.getElementById('undeclared-only');
  function apply(){
    var q=box.value.toLowerCase();
    document.querySelectorAll('table.filterable tbody tr').forEach(function(row){
      var hit=row.textContent.toLowerCase().indexOf(q)>=0;
      if(only.checked&&row.closest('table').id==='readers'&&!row.classList.contains('undeclared')){hit=false;}
      row.hidden=!hit;});
  }
  box.addEventListener('input',apply);only.addEventListener('change',apply);
})();
"""


_UNDECLARED = ' class="undeclared"'


def _e(text: str) -> str:
    return escape(shown(text))


def _reader_rows(item: SecretAccess) -> list[str]:
    rows = []
    for r in item.readers:
        cls = "" if r.declared else _UNDECLARED
        status = '<span class="tag">declared</span>' if r.declared else '<span class="tag bad">undeclared</span>'
        cond = ' <span class="tag warn">conditional</span>' if r.conditional else ""
        rows.append(f"<tr{cls}><td><code>{_e(item.address)}</code></td><td>{_e(r.name or '')}</td>"
                    f"<td><code>{_e(r.principal)}</code></td><td>{status}</td><td>{_e(r.via.value)}</td>"
                    f"<td><code>{_e(r.scope)}</code></td><td>{_e(r.grant)}{cond}</td></tr>")
    if not item.facts.complete:
        why = "; ".join(item.facts.incomplete_reasons) or "the scan did not run"
        rows.append(f'<tr class="unknown"><td><code>{_e(item.address)}</code></td><td></td><td>unknown</td>'
                    f'<td><span class="tag warn">incomplete</span></td><td></td><td></td><td>{_e(why)}</td></tr>')
    return rows


def render_html(report: AccessReport) -> str:
    s = report.summary()
    cards = [("secrets", s["secrets"], False), ("with undeclared readers", s["with_undeclared_readers"], True),
             ("readers unknown", s["readers_incomplete"], True), ("principals", s["principals"], False),
             ("unused grants", s["unused_grants"], True), ("rotation overdue", s["rotation_overdue"], True)]
    card_html = "".join(f'<div class="card{" bad" if bad and n else ""}"><b>{n}</b>{escape(label)}</div>'
                        for label, n, bad in cards)
    secret_rows = "".join(
        f"<tr{_UNDECLARED if item.undeclared else ''}><td><code>{_e(item.address)}</code></td>"
        f"<td>{_e(item.facts.provider)}</td><td>{'yes' if item.facts.managed else 'no'}</td>"
        f"<td>{_e(', '.join(item.facts.declared_readers))}</td>"
        f'<td class="num">{len(item.readers)}</td><td class="num">{len(item.undeclared)}</td>'
        f"<td>{'yes' if item.facts.complete else 'no'}</td><td>{_e(_usage(item))}</td></tr>"
        for item in report.secrets)
    reader_rows = "".join(row for item in report.secrets for row in _reader_rows(item))
    principal_rows = "".join(
        f"<tr><td>{_e(p.name or '')}</td><td><code>{_e(p.principal)}</code></td>"
        f'<td class="num">{len(p.can_read)}</td><td>{_e(", ".join(p.can_read[:50]))}'
        f"{' …' if len(p.can_read) > 50 else ''}</td></tr>" for p in report.principals)
    unused_rows = "".join(
        f"<tr><td><code>{_e(u.address)}</code></td><td>{_e(u.reader)}</td>"
        f"<td>{u.last_accessed.isoformat() if u.last_accessed else 'never'}</td></tr>" for u in report.unused)
    scope = f" — what {_e(report.principal_filter)} can read" if report.principal_filter else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>cloudsync access: {_e(report.stack)}</title><style>{_STYLE}</style></head>
<body>
<h1>Who can read what: stack {_e(report.stack)}{scope}</h1>
<div class="meta">targets: {_e(", ".join(report.targets))} · generated {report.generated_on.isoformat()} ·
no secret value is in this file</div>
<div class="cards">{card_html}</div>
<p>{_e(summary_line(report))}</p>
<div class="controls"><input id="filter" type="search" placeholder="filter by secret, principal, scope…">
<label><input id="undeclared-only" type="checkbox"> undeclared readers only</label></div>
<h2>Readers</h2>
<table id="readers" class="sortable filterable"><thead><tr><th>secret</th><th>name</th><th>principal</th>
<th>status</th><th>via</th><th>scope</th><th>grant</th></tr></thead><tbody>{reader_rows}</tbody></table>
<h2>Secrets</h2>
<table id="secrets" class="sortable filterable"><thead><tr><th>secret</th><th>provider</th><th>managed</th>
<th>declared readers</th><th>readers</th><th>undeclared</th><th>complete</th><th>use and age</th></tr></thead>
<tbody>{secret_rows}</tbody></table>
<h2>Principals</h2>
<table id="principals" class="sortable filterable"><thead><tr><th>name</th><th>principal</th><th>secrets</th>
<th>can read</th></tr></thead><tbody>{principal_rows}</tbody></table>
<h2>Unused grants</h2>
<table id="unused" class="sortable filterable"><thead><tr><th>secret</th><th>reader</th><th>last read</th></tr></thead>
<tbody>{unused_rows}</tbody></table>
<script>{_SCRIPT}</script>
</body></html>
"""
