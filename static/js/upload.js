// Upload page: drag-and-drop, several files, a URL. Each file shows a row with its name and
// the upload's progress between the drop and the answer; the answer's card takes its place.
// Results then update live over a websocket, with polling as a fallback while anything is
// still being analysed. Refusals are listed; a refused URL stays in its box.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  const drop = document.getElementById("dropzone");
  const input = document.getElementById("files");
  const urlBox = document.getElementById("url");
  const textBox = document.getElementById("text");
  const list = document.getElementById("items");
  const errors = document.getElementById("errors");
  const banned = document.getElementById("banned");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const labels = {processing: "Processing", passed: "Passed", review: "In review",
    flagged: "Flagged", approved: "Approved", rejected: "Rejected"};
  let closed = false;  // after a ban: nothing more is sent

  function card(item, placeholder) {
    let li = list.querySelector(`[data-id="${item.id}"]`);
    if (!li) {
      li = document.createElement("li");
      li.dataset.id = item.id;
      li.innerHTML = '<div class="thumb"></div><div class="meta"><div class="name"></div>' +
        '<div class="badges"></div><div class="reason"></div></div>';
      if (placeholder && placeholder.isConnected) {
        placeholder.replaceWith(li);
      } else {
        const empty = list.querySelector(".empty");
        if (empty) empty.remove();
        list.prepend(li);
      }
    } else if (placeholder) {
      placeholder.remove();  // the websocket was faster than the answer
    }
    li.className = "item status-" + item.status;
    const thumb = li.querySelector(".thumb");
    const hidden = item.status === "flagged" || item.status === "rejected";
    if (hidden) {
      thumb.innerHTML = '<span class="blocked">blocked</span>';
    } else if (item.kind === "text") {
      thumb.innerHTML = '<span class="text-thumb" aria-hidden="true">Aa</span>';
    } else if (item.kind === "video") {
      if (!thumb.querySelector("video")) {
        const clip = document.createElement("video");
        clip.src = `/uploads/items/${item.id}/original/`;
        clip.preload = "metadata";
        clip.muted = true;
        thumb.replaceChildren(clip);
      }
    } else if (!thumb.querySelector("img")) {
      const img = document.createElement("img");
      img.src = `/uploads/items/${item.id}/original/`;
      img.alt = "";
      thumb.replaceChildren(img);
    }
    li.querySelector(".name").textContent = item.name || "image";
    const badges = li.querySelector(".badges") || li.querySelector(".meta div:nth-child(2)");
    badges.replaceChildren();
    const out = document.createElement("span");
    out.className = "badge outcome";
    out.textContent = labels[item.status] || item.status;
    badges.append(out);
    if (item.category) {
      const cls = document.createElement("span");
      cls.className = "badge cls-" + item.category;
      cls.textContent = `${item.category} ${Math.round((item.confidence || 0) * 100)}%`;
      badges.append(cls);
    }
    const progress = (item.details || {}).progress;  // a long video: frames done of total
    li.querySelector(".reason").textContent = item.reason_text ||
      (progress ? `Analysing… ${progress.done} of ${progress.total} frames` : "Analysing…");
  }

  // --- one row per file (or URL) between the drop and the answer ---------------------------
  function placeholder(label, size, isUrl) {
    const li = document.createElement("li");
    li.className = "item uploading";
    li.innerHTML = '<div class="thumb"><progress max="100"></progress><span class="phase"></span>' +
      '</div><div class="meta"><div class="name"></div><div class="reason"></div></div>';
    li.querySelector(".name").textContent = label;
    const bar = li.querySelector("progress");
    const phase = li.querySelector(".phase");
    bar.setAttribute("aria-label", `Upload of ${label}`);
    const row = {label, size, li,
      progress(fraction) {
        const pct = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
        bar.value = pct;
        phase.textContent = `Uploading… ${pct}%`;
      },
      waiting(text) {  // sent; the server is checking it (no measurable progress)
        bar.removeAttribute("value");
        phase.textContent = text;
      },
      remove() { li.remove(); },
    };
    if (isUrl) row.waiting("Fetching…"); else row.progress(0);
    return row;
  }

  function showErrors(list_) {
    errors.replaceChildren(...list_.map((e) => {
      const li = document.createElement("li");
      li.textContent = e.name ? `${e.name}: ${e.detail}` : e.detail;
      if (e.code === "not_authenticated") {  // the session ended (a log-out, a ban)
        const again = document.createElement("a");
        again.href = form.dataset.loginUrl;
        again.textContent = "Sign in again";
        li.append(" ", again);
      }
      return li;
    }));
  }

  function showBanned(detail) {
    closed = true;
    banned.querySelector(".detail").textContent = detail;
    // The server's message usually says how to appeal; if not, the page's sentence does.
    banned.querySelector(".appeal").hidden = /appeal/i.test(detail);
    banned.hidden = false;
    drop.classList.add("disabled");
    form.querySelectorAll("input, button").forEach((el) => { el.disabled = true; });
  }

  function parse(text) {
    try {
      const body = JSON.parse(text);
      return body && typeof body === "object" ? body : null;
    } catch (e) {
      return null;
    }
  }

  // The answer: {"items": [...], "errors": [{name, code, detail}]}, with "code" and "detail"
  // on top when nothing was taken; any other error in the site's shape {"code", "detail"}.
  function answer(status, body, rows, url) {
    const items = body && Array.isArray(body.items) ? body.items : [];
    let refusals = body && Array.isArray(body.errors) ? body.errors : [];
    if (!items.length && !refusals.length) {
      let detail = body && body.detail;
      if (!detail) {
        detail = !status ? "The server did not answer; nothing was uploaded. Try again."
          : status === 200 ? "Your session has ended: reload the page and sign in again."
            : `Upload failed (${status}).`;
      }
      refusals = [{name: "", code: (body && body.code) || "", detail}];
    }
    // Rows in the order sent: each is the next refusal with its name or the next item taken.
    // A refusal without a name (too many files, a ban) refuses every row still left.
    let taken = 0;
    let refused = 0;
    let urlRefused = false;
    rows.forEach((row) => {
      const next = refusals[refused];
      if (next && !next.name) {
        urlRefused = urlRefused || row.isUrl;
      } else if (next && next.name === row.label) {
        refused += 1;
        urlRefused = urlRefused || row.isUrl;
      } else if (taken < items.length) {
        card(items[taken++], row.li);
        return;
      }
      row.remove();
    });
    items.slice(taken).forEach((item) => card(item));
    if (!list.children.length) {
      const empty = document.createElement("li");
      empty.className = "empty";
      empty.textContent = "Nothing yet.";
      list.append(empty);
    }
    const ban = refusals.find((r) => r.code === "banned");
    if (ban || (status === 403 && body && body.code === "banned")) {
      showBanned((ban && ban.detail) || body.detail);
      refusals = refusals.filter((r) => r !== ban);
    }
    showErrors(refusals);
    if (url) {
      if (urlRefused) {
        urlBox.setAttribute("aria-invalid", "true");  // it stays in the box, to correct
      } else if (urlBox.value.trim() === url) {
        urlBox.value = "";
      }
    }
    poll();
  }

  function send(files, url, text) {
    if (closed) return;
    files = Array.from(files || []);
    const rows = files.map((f) => placeholder(f.name, f.size, false));
    if (url) {
      const row = placeholder(url.slice(0, 200), 0, true);
      row.isUrl = true;
      rows.push(row);
    }
    if (text) rows.push(placeholder("text", 0, true));  // the server names it "text" too
    if (rows.length) {
      const empty = list.querySelector(".empty");
      if (empty) empty.remove();
      list.prepend(...rows.map((r) => r.li));
    }
    const data = new FormData();
    files.forEach((f) => data.append("files", f));
    if (url) data.append("url", url);
    if (text) data.append("text", text);
    const total = files.reduce((sum, f) => sum + f.size, 0);
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("X-CSRFToken", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    // The body is the files in order: each row's share of the bytes sent so far.
    xhr.upload.addEventListener("progress", (event) => {
      if (!event.lengthComputable || !event.total) return;
      const sent = (event.loaded / event.total) * total;
      let start = 0;
      files.forEach((f, i) => {
        rows[i].progress(f.size ? (sent - start) / f.size : 1);
        start += f.size;
      });
    });
    xhr.upload.addEventListener("load", () => {
      files.forEach((f, i) => rows[i].waiting("Checking…"));
    });
    xhr.addEventListener("load", () => answer(xhr.status, parse(xhr.responseText), rows, url));
    xhr.addEventListener("error", () => answer(0, null, rows, url));
    xhr.send(data);
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = textBox ? textBox.value : "";
    send(input.files, urlBox.value.trim(), text);
    input.value = "";
    if (textBox && text) textBox.value = "";
  });
  urlBox.addEventListener("input", () => urlBox.removeAttribute("aria-invalid"));
  input.addEventListener("change", () => { if (input.files.length) send(input.files, ""); input.value = ""; });
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); if (!closed) drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => {
    e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => { if (e.dataTransfer.files.length) send(e.dataTransfer.files, ""); });

  // Live updates.
  function connect() {
    if (closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${proto}://${location.host}/ws/uploads/`);
    socket.onmessage = (ev) => { const msg = JSON.parse(ev.data); if (msg.item) card(msg.item); };
    socket.onclose = () => setTimeout(connect, 3000);
  }
  connect();

  let polling = false;
  async function poll() {
    if (polling) return;
    polling = true;
    for (let round = 0; round < 120 && !closed; round++) {
      const pending = [...list.querySelectorAll(".status-processing")];
      if (!pending.length) break;
      await new Promise((r) => setTimeout(r, 1500));
      for (const li of pending) {
        const res = await fetch(`/uploads/items/${li.dataset.id}/status/`, {credentials: "same-origin"});
        if (res.ok) card(await res.json());
      }
    }
    polling = false;
  }
  poll();
})();
