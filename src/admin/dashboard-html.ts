// The dashboard: one self-contained HTML page (inline CSS, JS and SVG; nothing from a CDN) polling the
// admin API for topology, lag against tier bounds, which replica may serve which tier, decision rates, the
// offload ratio, fallbacks and the emergency controls.

/** The page for a request without a valid token: asks for one, then reloads with `?token=`. */
export function tokenPromptHtml(): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>freshet admin: token</title>
<style>body{font:15px system-ui,sans-serif;margin:3rem;color:#222}input{font:inherit;padding:.3rem}</style></head>
<body><h1>freshet admin</h1><p>This admin API needs its bearer token (<code>admin.token</code>).</p>
<form method="get" action="/"><input type="password" name="token" autocomplete="off" autofocus placeholder="token">
<button type="submit">Open dashboard</button></form></body></html>`
}

/** The dashboard page served at `GET /`. */
export function dashboardHtml(): string {
  return PAGE
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>freshet dashboard</title>
<style>
  :root { --fg:#1d2430; --muted:#667085; --bg:#f6f7f9; --card:#fff; --ok:#12805c; --bad:#c4320a; --warn:#b54708; --line:#e4e7ec; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, Segoe UI, sans-serif; color:var(--fg); background:var(--bg); }
  header { display:flex; gap:1.5rem; align-items:baseline; padding:.8rem 1.2rem; background:#101828; color:#fff; }
  header h1 { font-size:1.1rem; margin:0; letter-spacing:.02em; }
  header span { color:#d0d5dd; }
  main { display:grid; grid-template-columns: repeat(auto-fit, minmax(460px, 1fr)); gap:1rem; padding:1rem 1.2rem; }
  section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding: .8rem 1rem; }
  section h2 { font-size:.95rem; margin:0 0 .6rem; color:var(--muted); text-transform:uppercase; letter-spacing:.05em; }
  table { border-collapse:collapse; width:100%; }
  th, td { text-align:left; padding:.25rem .5rem; border-bottom:1px solid var(--line); white-space:nowrap; }
  th { color:var(--muted); font-weight:600; }
  .ok { color:var(--ok); font-weight:600; } .bad { color:var(--bad); font-weight:600; } .warn { color:var(--warn); font-weight:600; }
  .num { text-align:right; font-variant-numeric: tabular-nums; }
  #lag-chart { width:100%; height:260px; display:block; }
  #lag-chart text { font-size:11px; fill:var(--muted); }
  .legend { display:flex; flex-wrap:wrap; gap:.8rem; margin-top:.4rem; font-size:.85rem; }
  .legend i { display:inline-block; width:12px; height:3px; vertical-align:middle; margin-right:.3rem; }
  .controls { display:flex; flex-direction:column; gap:.5rem; }
  .controls button { font:inherit; padding:.45rem .8rem; border-radius:6px; border:1px solid #98a2b3; background:#fff; cursor:pointer; text-align:left; }
  .controls button.on { background:#fef3f2; border-color:var(--bad); color:var(--bad); font-weight:600; }
  .controls .state { display:inline-block; min-width:2.6em; font-weight:700; margin-right:.5rem; }
  .controls small { display:block; color:var(--muted); }
  td.lag-ok { color:var(--ok); } td.lag-warn { background:#fffaeb; color:var(--warn); font-weight:600; } td.lag-bad { background:#fef3f2; color:var(--bad); font-weight:600; }
  td.elig-yes { color:var(--ok); font-weight:600; } td.elig-no { color:var(--bad); }
  td.empty { color:var(--muted); font-style:italic; text-align:center; }
  #status { font-size:.85rem; }
  #error { color:var(--bad); padding:0 1.2rem; }
</style>
</head>
<body>
<header><h1>freshet</h1><span id="version">config version ?</span><span id="primary">primary ?</span><span id="status">connecting</span></header>
<div id="error" role="alert"></div>
<main>
  <section id="topology-card"><h2>Topology</h2>
    <table id="topology"><thead><tr><th class="shard-col" hidden>shard</th><th>node</th><th>role</th><th>health</th><th>breaker</th><th class="num">lag</th><th class="num">pool active/idle</th><th class="num">waiting</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="lag-card"><h2>Replica lag (last 5 minutes) against tier bounds</h2>
    <svg id="lag-chart" viewBox="0 0 640 260" preserveAspectRatio="none" role="img" aria-label="replica lag chart"></svg>
    <div class="legend" id="lag-legend"></div>
  </section>
  <section id="eligibility-card"><h2>Eligible now: replica x tier</h2>
    <table id="eligibility"><thead><tr><th>replica</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="offload-card"><h2>Offload ratio: reads served by replicas, per tier</h2>
    <table id="offload"><thead><tr><th>tier</th><th class="num">replica reads</th><th class="num">all reads</th><th class="num">ratio</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Decisions per second by tier and target</h2>
    <table id="rates"><thead><tr><th>tier</th><th>target</th><th class="num">per second</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Fallbacks per second by tier</h2>
    <table id="fallbacks"><thead><tr><th>tier</th><th class="num">per second</th><th class="num">total</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Emergency controls</h2>
    <div class="controls" id="controls"></div>
  </section>
</main>
<script>
(function () {
  'use strict'
  var WINDOW_MS = 5 * 60 * 1000
  var POLL_MS = 1000
  var COLORS = ['#2e90fa', '#f79009', '#12b76a', '#9e77ed', '#f04438', '#0ba5ec', '#ee46bc', '#667085']
  var CONTROLS = [
    { name: 'route_all_to_primary', label: 'Route everything to the primary', help: 'every read and write goes to the primary' },
    { name: 'disable_replica_pools', label: 'Disable the replica pools', help: 'no replica serves reads; their connections close' },
    { name: 'disable_lag_checks', label: 'Pause lag checks', help: 'stop probing replica lag (last readings age out)' },
  ]
  var REASON_TEXT = { controls: 'controls', unhealthy: 'down', breaker_open: 'breaker open', breaker_half_open: 'breaker half-open', lag_unknown: 'lag unknown', over_bound: 'too stale' }
  var history = {}            // host -> [{ t, lag (s) or null }]
  var colorOf = {}
  var lastStats = null
  var topo = null

  var params = new URLSearchParams(location.search)
  var token = params.get('token') || sessionStorage.getItem('freshet-token') || ''
  if (params.has('token')) {
    sessionStorage.setItem('freshet-token', token)
    params.delete('token')
    history_replace()
  }
  function history_replace() {
    var q = params.toString()
    window.history.replaceState(null, '', location.pathname + (q ? '?' + q : ''))
  }

  function api(path, init) {
    init = init || {}
    init.headers = Object.assign({ accept: 'application/json' }, init.headers || {})
    if (token) init.headers.authorization = 'Bearer ' + token
    return fetch(path, init).then(function (res) {
      if (res.status === 401) {
        var t = window.prompt('freshet admin token')
        if (t) { token = t; sessionStorage.setItem('freshet-token', t) }
        throw new Error('unauthorized')
      }
      return res.json().then(function (body) {
        if (!res.ok) throw new Error(body.error || ('HTTP ' + res.status))
        return body
      })
    })
  }

  function el(tag, attrs, text) {
    var ns = tag === 'svg' || tag === 'path' || tag === 'line' || tag === 'text' || tag === 'g' || tag === 'rect'
    var e = ns ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag)
    for (var k in attrs || {}) e.setAttribute(k, attrs[k])
    if (text !== undefined) e.textContent = text
    return e
  }
  function fmtLag(ms) {
    if (ms === null || ms === undefined) return 'unknown'
    return ms < 1000 ? ms + ' ms' : (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s'
  }
  function staleness(n) {
    return typeof n.staleness_bound_ms === 'number' ? n.staleness_bound_ms : n.lag_ms
  }
  /** The bounds (ms > 0) a staleness breaks, tightest first; 0 bounds (strict) are for caught-up replicas only. */
  function broken(ms, tiers) {
    if (ms === null || ms === undefined) return []
    return Object.keys(tiers).filter(function (k) { return tiers[k].max_lag_ms > 0 && ms > tiers[k].max_lag_ms })
      .sort(function (a, b) { return tiers[a].max_lag_ms - tiers[b].max_lag_ms })
  }
  function lagClass(ms, tiers) {
    if (ms === null || ms === undefined) return 'lag-unknown'
    var all = Object.keys(tiers).filter(function (k) { return tiers[k].max_lag_ms > 0 })
    var b = broken(ms, tiers)
    if (b.length === 0) return 'lag-ok'
    return b.length === all.length ? 'lag-bad' : 'lag-warn'
  }
  function emptyRow(body, columns, text) {
    var tr = el('tr', { class: 'empty-row' })
    tr.appendChild(el('td', { class: 'empty', colspan: String(columns) }, text))
    body.appendChild(tr)
  }
  function color(host) {
    if (!colorOf[host]) colorOf[host] = COLORS[Object.keys(colorOf).length % COLORS.length]
    return colorOf[host]
  }

  function renderTopology(t) {
    document.getElementById('version').textContent = 'config version ' + t.config_version
    // sharded: one primary per shard, a shard column, the routing map version
    var sharded = Array.isArray(t.shards)
    document.getElementById('primary').textContent = sharded
      ? t.shards.map(function (s) { return s.name + ': ' + (s.primary || 'none') }).join(', ') +
        (t.routing_map_version ? ' (routing map v' + t.routing_map_version + ')' : '')
      : 'primary ' + (t.primary || 'none')
    document.querySelectorAll('#topology .shard-col').forEach(function (th) { th.hidden = !sharded })
    var body = document.querySelector('#topology tbody')
    body.replaceChildren()
    t.nodes.forEach(function (n) {
      var tr = el('tr', { 'data-node': n.name })
      if (sharded) tr.appendChild(el('td', { class: 'shard' }, n.shard === '@aggregate' ? 'aggregate' : n.shard || '-'))
      tr.appendChild(el('td', {}, n.name))
      tr.appendChild(el('td', {}, n.role))
      tr.appendChild(el('td', { class: n.healthy ? 'ok' : 'bad' }, n.healthy ? 'healthy' : 'down'))
      tr.appendChild(el('td', { class: n.breaker === 'closed' ? 'ok' : n.breaker === 'open' ? 'bad' : 'warn' }, n.breaker))
      if (n.role === 'primary') tr.appendChild(el('td', { class: 'num' }, '-'))
      else {
        var ms = staleness(n)
        var b = broken(ms, t.tiers)
        var td = el('td', { class: 'num lag ' + lagClass(ms, t.tiers), 'data-breaks': b.join(' ') }, fmtLag(n.lag_ms))
        td.title = b.length ? 'breaks ' + b.map(function (k) { return k + ' (' + fmtLag(t.tiers[k].max_lag_ms) + ')' }).join(', ') : 'within every tier bound above 0 ms'
        tr.appendChild(td)
      }
      tr.appendChild(el('td', { class: 'num' }, n.pool ? n.pool.active + '/' + n.pool.idle : '-'))
      tr.appendChild(el('td', { class: 'num' }, n.pool ? String(n.pool.waiting) : '-'))
      body.appendChild(tr)
    })
    renderControls(t.controls)
    renderEligibility(t)
  }

  function renderEligibility(t) {
    var tiers = Object.keys(t.tiers)
    var head = document.querySelector('#eligibility thead tr')
    head.replaceChildren(el('th', {}, 'replica'))
    tiers.forEach(function (k) { head.appendChild(el('th', {}, k + ' (' + fmtLag(t.tiers[k].max_lag_ms) + ')')) })
    var body = document.querySelector('#eligibility tbody')
    body.replaceChildren()
    var rows = Object.keys(t.eligibility || {}).sort()
    if (rows.length === 0) return emptyRow(body, tiers.length + 1, 'no replicas configured: every read goes to the primary')
    rows.forEach(function (host) {
      var tr = el('tr', { 'data-node': host })
      tr.appendChild(el('td', {}, host))
      tiers.forEach(function (k) {
        var c = t.eligibility[host][k]
        var td = el('td', { class: c && c.eligible ? 'elig-yes' : 'elig-no', 'data-tier': k, 'data-reason': c ? c.reason : 'unknown' },
          c ? (c.eligible ? 'eligible' : REASON_TEXT[c.reason] || c.reason) : '?')
        if (c) td.title = c.detail
        tr.appendChild(td)
      })
      body.appendChild(tr)
    })
  }

  /** Per tier, the share of reads with that tier that replicas served (cumulative since the process started). */
  function renderOffload(stats) {
    var replicas = {}
    ;(topo ? topo.nodes : []).forEach(function (n) { if (n.role !== 'primary') replicas[n.name] = true })
    var byTier = {}
    stats.decisions.forEach(function (v) {
      if (!v.tier || v.tier === 'none' || v.target === 'none') return
      var e = byTier[v.tier] || (byTier[v.tier] = { replica: 0, all: 0 })
      e.all += v.count
      if (replicas[v.target]) e.replica += v.count
    })
    var body = document.querySelector('#offload tbody')
    body.replaceChildren()
    var tiers = Object.keys(byTier).sort()
    if (tiers.length === 0) return emptyRow(body, 4, 'no traffic yet: no reads with a tier have been routed')
    tiers.forEach(function (k) {
      var e = byTier[k]
      var tr = el('tr', { 'data-tier': k })
      tr.appendChild(el('td', {}, k))
      tr.appendChild(el('td', { class: 'num' }, String(e.replica)))
      tr.appendChild(el('td', { class: 'num' }, String(e.all)))
      tr.appendChild(el('td', { class: 'num ratio' }, e.all ? Math.round((100 * e.replica) / e.all) + ' %' : '-'))
      body.appendChild(tr)
    })
  }

  function recordLag(t) {
    var now = Date.now()
    var seen = {}
    t.nodes.forEach(function (n) {
      if (n.role === 'primary') return
      seen[n.name] = true
      var h = history[n.name] || (history[n.name] = [])
      h.push({ t: now, lag: n.lag_ms === null ? null : n.lag_ms / 1000 })
      while (h.length && h[0].t < now - WINDOW_MS) h.shift()
    })
    for (var host in history) if (!seen[host]) delete history[host]
  }

  function renderChart(t) {
    var svg = document.getElementById('lag-chart')
    var W = 640, H = 260, L = 48, R = 10, T = 10, B = 22
    var now = Date.now()
    var bounds = Object.keys(t.tiers).map(function (k) { return { tier: k, s: t.tiers[k].max_lag_ms / 1000 } })
    var positive = bounds.filter(function (b) { return b.s > 0 }).sort(function (a, b) { return a.s - b.s })
    var maxLag = 0
    for (var host in history) history[host].forEach(function (p) { if (p.lag !== null && p.lag > maxLag) maxLag = p.lag })
    var yMax = Math.max(maxLag * 1.15, positive.length ? positive[0].s * 1.25 : 1, 0.05)
    // The x axis spans what was seen, from 20 s up to the 5 minute window, so a fresh page is readable.
    var first = now
    for (var h0 in history) if (history[h0].length && history[h0][0].t < first) first = history[h0][0].t
    var span = Math.min(WINDOW_MS, Math.max(20000, now - first))
    function x(tm) { return L + (W - L - R) * (1 - (now - tm) / span) }
    function y(v) { return T + (H - T - B) * (1 - Math.min(v, yMax) / yMax) }
    svg.replaceChildren()
    svg.appendChild(el('rect', { x: L, y: T, width: W - L - R, height: H - T - B, fill: '#fcfcfd', stroke: '#e4e7ec' }))
    for (var i = 0; i <= 4; i++) {
      var v = (yMax * i) / 4
      svg.appendChild(el('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: '#f2f4f7' }))
      svg.appendChild(el('text', { x: L - 4, y: y(v) + 4, 'text-anchor': 'end' }, v < 1 ? Math.round(v * 1000) + 'ms' : v.toFixed(1) + 's'))
    }
    svg.appendChild(el('text', { x: L, y: H - 6 }, span >= 60000 ? '-' + Math.round(span / 60000) + ' min' : '-' + Math.round(span / 1000) + ' s'))
    svg.appendChild(el('text', { x: W - R, y: H - 6, 'text-anchor': 'end' }, 'now'))
    if (Object.keys(history).length === 0) {
      svg.appendChild(el('text', { class: 'empty', x: (L + W - R) / 2, y: (T + H - B) / 2, 'text-anchor': 'middle' },
        t.nodes.some(function (n) { return n.role !== 'primary' }) ? 'waiting for lag readings' : 'no replicas configured'))
    }
    var legend = document.getElementById('lag-legend')
    legend.replaceChildren()
    bounds.forEach(function (b) {
      if (b.s > 0 && b.s <= yMax) {
        svg.appendChild(el('line', { class: 'tier-bound', 'data-tier': b.tier, x1: L, x2: W - R, y1: y(b.s), y2: y(b.s), stroke: '#c4320a', 'stroke-dasharray': '6 4', 'stroke-width': 1 }))
        svg.appendChild(el('text', { x: W - R - 4, y: y(b.s) - 4, 'text-anchor': 'end' }, b.tier + ' ' + fmtLag(b.s * 1000)))
      }
      // a 0 ms bound would sit on the axis: it is said in the legend, not drawn
      var note = b.s === 0 ? ' (only the primary or a caught-up replica; not drawn)' : b.s > yMax ? ' (off scale)' : ''
      var item = el('span', {}, b.tier + ' bound ' + fmtLag(b.s * 1000) + note)
      legend.appendChild(item)
    })
    Object.keys(history).sort().forEach(function (host) {
      var d = ''
      var pen = false
      history[host].forEach(function (p) {
        if (p.lag === null) { pen = false; return }
        d += (pen ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p.lag).toFixed(1) + ' '
        pen = true
      })
      svg.appendChild(el('path', { class: 'lag-line', 'data-host': host, d: d.trim(), fill: 'none', stroke: color(host), 'stroke-width': 2.5, 'stroke-linejoin': 'round' }))
      var item = el('span', {})
      var swatch = el('i', {})
      swatch.style.background = color(host)
      item.appendChild(swatch)
      item.appendChild(document.createTextNode(host))
      legend.insertBefore(item, legend.firstChild)
    })
  }

  function renderRates(stats) {
    var prev = lastStats
    lastStats = stats
    var dt = prev ? (stats.at - prev.at) / 1000 : 0
    function index(list, keyOf) {
      var m = {}
      list.forEach(function (v) { var k = keyOf(v); m[k] = (m[k] || 0) + v.count })
      return m
    }
    var byTT = index(stats.decisions, function (v) { return v.tier + '\\u0000' + v.target })
    var prevTT = prev ? index(prev.decisions, function (v) { return v.tier + '\\u0000' + v.target }) : {}
    var body = document.querySelector('#rates tbody')
    body.replaceChildren()
    if (Object.keys(byTT).length === 0) emptyRow(body, 3, 'no traffic yet')
    Object.keys(byTT).sort().forEach(function (k) {
      var parts = k.split('\\u0000')
      var rate = dt > 0 ? (byTT[k] - (prevTT[k] || 0)) / dt : 0
      var tr = el('tr', { 'data-tier': parts[0], 'data-target': parts[1] })
      tr.appendChild(el('td', {}, parts[0]))
      tr.appendChild(el('td', {}, parts[1]))
      tr.appendChild(el('td', { class: 'num' }, rate.toFixed(1)))
      body.appendChild(tr)
    })
    var fb = index(stats.fallbacks, function (v) { return v.tier })
    var prevFb = prev ? index(prev.fallbacks, function (v) { return v.tier }) : {}
    var fbody = document.querySelector('#fallbacks tbody')
    fbody.replaceChildren()
    if (Object.keys(fb).length === 0) emptyRow(fbody, 3, 'no fallbacks yet')
    Object.keys(fb).sort().forEach(function (k) {
      var rate = dt > 0 ? (fb[k] - (prevFb[k] || 0)) / dt : 0
      var tr = el('tr', { 'data-tier': k })
      tr.appendChild(el('td', {}, k))
      tr.appendChild(el('td', { class: 'num' + (rate > 0 ? ' warn' : '') }, rate.toFixed(1)))
      tr.appendChild(el('td', { class: 'num' }, String(fb[k])))
      fbody.appendChild(tr)
    })
  }

  function renderControls(controls) {
    var box = document.getElementById('controls')
    box.replaceChildren()
    CONTROLS.forEach(function (c) {
      var name = c.name
      var on = !!controls[name]
      var b = el('button', { type: 'button', 'data-control': name, 'aria-pressed': String(on), class: on ? 'on' : '' })
      b.appendChild(el('span', { class: 'state' }, on ? 'ON' : 'OFF'))
      b.appendChild(document.createTextNode(c.label + (on ? ': click to turn off' : ': click to turn on')))
      b.appendChild(el('small', {}, c.help + ' (' + name + ')'))
      b.addEventListener('click', function () {
        var next = !on
        if (!window.confirm((next ? 'Turn ON: ' : 'Turn OFF: ') + c.label + ' (' + name + ')?')) return
        var patch = {}
        patch[name] = next
        api('/api/v1/controls', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(patch) })
          .then(function (c) { renderControls(c) }, showError)
      })
      box.appendChild(b)
    })
  }

  function showError(err) {
    document.getElementById('error').textContent = err ? 'error: ' + err.message : ''
    document.getElementById('status').textContent = err ? 'error' : 'live'
  }

  function poll() {
    Promise.all([api('/api/v1/topology'), api('/api/v1/stats')]).then(function (r) {
      topo = r[0]
      renderTopology(topo)
      recordLag(topo)
      renderChart(topo)
      renderRates(r[1])
      renderOffload(r[1])
      showError(null)
      document.body.setAttribute('data-polls', String(Number(document.body.getAttribute('data-polls') || 0) + 1))
    }, showError).finally(function () { setTimeout(poll, POLL_MS) })
  }
  // seed the chart with the server's own history, so it shows the last minutes from the first paint
  api('/api/v1/lag-history').then(function (h) {
    var offset = Date.now() - h.now
    Object.keys(h.nodes).forEach(function (host) {
      history[host] = h.nodes[host].map(function (p) {
        return { t: p[0] + offset, lag: p[1] === null ? null : p[1] / 1000 }
      })
    })
  }, function () {}).finally(poll)
})()
</script>
</body>
</html>
`
