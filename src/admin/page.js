'use strict';
// Fills the status page from GET /status (the one schema: src/admin/status.rs) and polls it
// again every REFRESH_MS. Every value is written with textContent, never as markup (the CSP
// also enforces Trusted Types, so an HTML sink would throw).
(() => {
  const REFRESH_MS = 2000;
  const $ = (id) => document.getElementById(id);
  let polls = 0;

  const rate = (x) => (x === 0 ? '0' : x < 10 ? x.toFixed(2) : x.toFixed(1));
  const count = (n) => String(n);
  const ms = (x) => (x == null ? '–' : x < 1000 ? `${x < 10 ? x.toFixed(2) : x.toFixed(0)} ms` : `${(x / 1000).toFixed(2)} s`);
  const when = (unix) => (unix == null ? 'never' : `${new Date(unix * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC`);
  const span = (secs) => {
    const d = Math.floor(secs / 86400), h = Math.floor(secs / 3600) % 24, m = Math.floor(secs / 60) % 60, s = Math.floor(secs % 60);
    return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m ${s}s` : m ? `${m}m ${s}s` : `${s}s`;
  };

  function cell(row, text, cls) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  // Replaces a table's body with one row per item (or a "none" row).
  function rows(id, items, render) {
    const table = $(id);
    const out = items.map((item) => {
      const tr = document.createElement('tr');
      render(tr, item);
      return tr;
    });
    if (!out.length) {
      const tr = document.createElement('tr');
      cell(tr, 'none', 'empty').colSpan = table.tHead.rows[0].cells.length;
      out.push(tr);
    }
    table.tBodies[0].replaceChildren(...out);
  }

  // Replaces a <dl> with [term, value, class] entries.
  function terms(id, entries) {
    $(id).replaceChildren(...entries.map(([term, value, cls]) => {
      const div = document.createElement('div');
      const dt = document.createElement('dt');
      const dd = document.createElement('dd');
      dt.textContent = term;
      dd.textContent = value;
      if (cls) dd.className = cls;
      div.append(dt, dd);
      return div;
    }));
  }

  function traffic(tr, t) {
    for (const x of [t.requests_per_sec, t.client_errors_per_sec, t.server_errors_per_sec]) cell(tr, rate(x), 'num');
    for (const n of [t.requests, t.client_errors, t.server_errors]) cell(tr, count(n), 'num');
  }

  function routes(s) {
    rows('routes', s.routes, (tr, r) => {
      tr.dataset.route = r.name;
      if (r.traffic.server_errors_per_sec > 0) tr.className = 'failing';
      cell(tr, r.name);
      cell(tr, r.path);
      cell(tr, r.pools.join(', '));
      traffic(tr, r.traffic);
      cell(tr, ms(r.traffic.p50_ms), 'num');
      cell(tr, ms(r.traffic.p99_ms), 'num');
    });
  }

  function backendState(b) {
    if (!b.healthy) return ['down', 'DOWN'];
    if (b.circuit === 'open' || b.circuit === 'half-open') return [b.circuit, 'UP'];
    return ['up', 'UP'];
  }

  function pools(s) {
    const items = s.pools.flatMap((p) => [{ pool: p }, ...p.backends.map((b) => ({ pool: p, backend: b }))]);
    rows('backends', items, (tr, { pool, backend }) => {
      if (!backend) {
        const usable = pool.backends.filter((b) => b.usable).length;
        tr.className = usable ? 'pool' : 'pool down';
        tr.dataset.pool = pool.name;
        cell(tr, pool.name);
        cell(tr, `${usable}/${pool.backends.length} taking requests${pool.checked ? '' : ' (first health check pending)'}`).colSpan = 8;
        return;
      }
      const [cls, health] = backendState(backend);
      tr.className = cls;
      tr.dataset.backend = backend.addr;
      cell(tr, '');
      cell(tr, backend.addr);
      cell(tr, count(backend.weight), 'num');
      cell(tr, health, 'state');
      cell(tr, backend.circuit ?? '–');
      cell(tr, backend.ejections == null ? '–' : count(backend.ejections), 'num');
      cell(tr, backend.usable ? 'yes' : 'no');
      const t = backend.traffic;
      cell(tr, rate(t.attempts_per_sec), 'num');
      cell(tr, rate(t.errors_per_sec), t.errors_per_sec > 0 ? 'num bad' : 'num');
    });
  }

  function tools(s) {
    rows('tools', s.tools, (tr, t) => {
      cell(tr, t.name);
      cell(tr, rate(t.traffic.requests_per_sec), 'num');
      for (const n of [t.traffic.requests, t.traffic.client_errors, t.traffic.server_errors]) cell(tr, count(n), 'num');
    });
    rows('rejections', s.rejections, (tr, r) => {
      if (r.per_sec > 0) tr.className = 'refusing';
      cell(tr, r.reason);
      cell(tr, rate(r.per_sec), 'num');
      cell(tr, count(r.total), 'num');
    });
  }

  function limits(s) {
    const items = s.limits.flatMap((l) => (l.busiest.length ? l.busiest.map((k) => ({ l, k })) : [{ l }]));
    rows('limits', items, (tr, { l, k }) => {
      cell(tr, l.name);
      cell(tr, l.backend);
      if (!k) {
        cell(tr, 'no key at half its quota in the last minute', 'empty').colSpan = 6;
        return;
      }
      for (const x of [k.key, k.tier, k.kind]) cell(tr, x);
      cell(tr, String(k.used), 'num');
      cell(tr, String(k.quota), 'num');
      cell(tr, `${span(k.seen_ms_ago / 1000)} ago`);
    });
  }

  function summary(s) {
    const t = s.totals;
    const backends = s.pools.flatMap((p) => p.backends);
    const down = backends.filter((b) => !b.healthy).length;
    // The tab's title tells what matters while the page is in the background.
    const health = down ? `${down}/${backends.length} backends down` : `${backends.length}/${backends.length} backends up`;
    document.title = `mcp-edge: ${health}, ${rate(t.requests_per_sec)} req/s`;
    terms('summary', [
      ['state', s.ready ? 'ready' : 'not ready', s.ready ? 'good' : 'bad'],
      ['uptime', span(s.uptime_secs)],
      ['config', `generation ${s.config.generation}`],
      ['connections', count(s.connections.open)],
      ['SSE streams', count(s.connections.streams)],
      ['req/s', rate(t.requests_per_sec)],
      ['5xx/s', rate(t.server_errors_per_sec), t.server_errors_per_sec > 0 ? 'bad' : ''],
      ['p50 / p99', `${ms(t.p50_ms)} / ${ms(t.p99_ms)}`],
      ['backends down', count(down), down ? 'bad' : ''],
      ['panics', count(s.panics), s.panics ? 'bad' : ''],
    ]);
    const c = s.config;
    terms('config', [
      ['source', c.source ?? 'embedded'],
      ['digest', c.digest],
      ['generation', count(c.generation)],
      ['last reload', c.last_reload == null ? 'none since start' : `${when(c.last_reload)} (${c.last_reload_ok ? 'applied' : 'refused'})`, c.last_reload_ok === false ? 'bad' : ''],
      ['last error', c.last_error ?? 'none', c.last_error ? 'bad' : ''],
      ['last changes', c.last_changes.length ? c.last_changes.join('; ') : 'none'],
      ['reloads', `${c.reloads_ok} applied, ${c.reloads_failed} refused`],
      ['connections', `${s.connections.open} open, ${s.connections.refused} refused at max_connections, ${s.connections.denied} denied by address`],
      ['redis', s.redis == null ? 'not configured' : `${s.redis.url} ${s.redis.up ? 'up' : 'DOWN'}`, s.redis && !s.redis.up ? 'bad' : ''],
      ['session key', s.sessions.shared_key ? 'shared (key file)' : 'generated at start', ''],
      ['legacy sessions', `${count(s.sessions.seen)} seen recently (GET /sessions)`],
      ['started', when(s.started_at)],
    ]);
  }

  function render(s) {
    $('version').textContent = s.version;
    $('window').textContent = s.window_secs < 60 ? `${s.window_secs.toFixed(1)} s` : span(s.window_secs);
    summary(s);
    routes(s);
    pools(s);
    tools(s);
    limits(s);
  }

  async function poll() {
    try {
      const r = await fetch('/status', { cache: 'no-store', credentials: 'same-origin' });
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      render(await r.json());
      polls += 1;
      document.body.dataset.polls = String(polls);
      $('stale').hidden = true;
      $('updated').textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    } catch (e) {
      document.title = 'mcp-edge: status unreachable';
      $('stale').hidden = false;
      $('stale').textContent = `Cannot read /status (${e.message}); the numbers below are from the last answer.`;
    } finally {
      setTimeout(poll, REFRESH_MS);
    }
  }

  poll();
})();
