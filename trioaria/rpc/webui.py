"""The built-in web page (``--rpc-web-ui``): list downloads, add a URI, pause, resume, remove (pure).

Served by the RPC server itself at ``/`` (the page) and ``/webui.js`` (its script), only when
``--rpc-web-ui`` is on.  The page is a client of the same JSON-RPC interface as any front end:
every second it asks ``system.multicall`` for ``tellActive``, ``tellWaiting`` and
``tellStopped`` and redraws one table row per download (name, status, progress, speed, buttons).
The secret comes from the page's address (``/#token=SECRET``) or its token field and is kept
in the browser's ``localStorage``; the page itself holds nothing secret.

Safety: answers carry ``Content-Security-Policy: default-src 'self'`` (no inline script, no
other origin), and every value from the engine (file names come from servers) is written with
``textContent``, never parsed as HTML.
"""

from __future__ import annotations

__all__ = ["CSP", "PAGE", "SCRIPT"]

CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'"

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>trioaria</title>
<style>
body { font: 14px sans-serif; margin: 1em; }
table { border-collapse: collapse; width: 100%; margin-top: 1em; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 8px; text-align: left; }
progress { width: 10em; }
#error { color: #b00; }
</style>
<script src="/webui.js" defer></script>
</head>
<body>
<h1>trioaria</h1>
<form id="add">
  <input id="uri" type="text" size="60" placeholder="URI or magnet link">
  <button id="add-button" type="submit">Add</button>
  <label>Token <input id="token" type="password" size="12"></label>
</form>
<p id="stat"></p>
<p id="error"></p>
<table>
  <thead><tr><th>Name</th><th>Status</th><th>Progress</th><th>Speed</th><th></th></tr></thead>
  <tbody id="downloads"></tbody>
</table>
</body>
</html>
"""

SCRIPT = """"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  let token = "";
  let seq = 0;

  function params(list) {
    return token ? ["token:" + token].concat(list) : list;
  }

  async function call(method, list) {
    // system.multicall takes no token itself: each inner call carries one
    const full = method === "system.multicall" ? list : params(list);
    const body = {jsonrpc: "2.0", id: "ui" + (seq++), method: method, params: full};
    const answer = await fetch("/jsonrpc", {method: "POST", body: JSON.stringify(body)});
    const data = await answer.json();
    if (data.error) { throw new Error(data.error.message); }
    return data.result;
  }

  function name(d) {
    const path = d.files && d.files.length ? d.files[0].path : "";
    if (d.bittorrent && d.bittorrent.info) { return d.bittorrent.info.name; }
    if (path) { return path.split("/").pop(); }
    const uris = d.files && d.files.length ? d.files[0].uris : [];
    return uris.length ? uris[0].uri : d.gid;
  }

  function button(label, action, gid) {
    const b = document.createElement("button");
    b.textContent = label;
    b.className = action;
    b.addEventListener("click", () => act(action, gid));
    return b;
  }

  function row(d) {
    const tr = document.createElement("tr");
    tr.className = "download";
    tr.dataset.gid = d.gid;
    tr.dataset.status = d.status;
    const total = Number(d.totalLength), done = Number(d.completedLength);
    const cells = [name(d), d.status, "", (Number(d.downloadSpeed) / 1024).toFixed(1) + " KiB/s"];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    const bar = document.createElement("progress");
    bar.max = total || 1;
    bar.value = total ? done : 0;
    tr.children[2].appendChild(bar);
    const tail = document.createElement("td");
    if (d.status === "active" || d.status === "waiting") {
      tail.appendChild(button("Pause", "pause", d.gid));
    }
    if (d.status === "paused") { tail.appendChild(button("Resume", "unpause", d.gid)); }
    if (["active", "waiting", "paused"].includes(d.status)) {
      tail.appendChild(button("Remove", "remove", d.gid));
    }
    tr.appendChild(tail);
    return tr;
  }

  async function act(action, gid) {
    try { await call("aria2." + action, [gid]); await refresh(); }
    catch (e) { $("error").textContent = e.message; }
  }

  async function refresh() {
    const keys = ["gid", "status", "totalLength", "completedLength", "downloadSpeed", "files",
                  "bittorrent"];
    try {
      const results = await call("system.multicall", [[
        {methodName: "aria2.tellActive", params: params([keys])},
        {methodName: "aria2.tellWaiting", params: params([0, 1000, keys])},
        {methodName: "aria2.tellStopped", params: params([0, 1000, keys])},
      ]]);
      const rows = [];
      for (const item of results) {
        if (!Array.isArray(item)) { throw new Error(item.message || "RPC error"); }
        rows.push(...item[0]);
      }
      const body = $("downloads");
      body.replaceChildren(...rows.map(row));
      $("stat").textContent = rows.length + " download(s)";
      $("error").textContent = "";
    } catch (e) {
      $("error").textContent = e.message;
    }
  }

  async function add(event) {
    event.preventDefault();
    const uri = $("uri").value.trim();
    if (!uri) { return; }
    try { await call("aria2.addUri", [[uri]]); $("uri").value = ""; await refresh(); }
    catch (e) { $("error").textContent = e.message; }
  }

  function start() {
    const match = /token=([^&]*)/.exec(location.hash);
    token = match ? decodeURIComponent(match[1]) : (localStorage.getItem("token") || "");
    localStorage.setItem("token", token);
    $("token").value = token;
    $("token").addEventListener("change", () => {
      token = $("token").value;
      localStorage.setItem("token", token);
      refresh();
    });
    $("add").addEventListener("submit", add);
    refresh();
    setInterval(refresh, 1000);
  }

  start();
})();
"""
