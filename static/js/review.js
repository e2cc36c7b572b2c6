// Review page: keyboard-first decisions, live queue counts over a websocket, and lease
// heartbeats. Without this script the forms still work (post, redirect, message).
(function () {
  "use strict";
  const root = document.getElementById("review-root");
  if (!root) return;
  const grid = document.getElementById("cards");
  const decideForm = document.getElementById("decide-form");
  const fetchForm = document.getElementById("fetch-form");
  const releaseForm = document.getElementById("release-form");
  const reasonChoice = document.getElementById("reason-choice");
  const reasonText = document.getElementById("reason-text");
  const toastBox = document.getElementById("toast");
  const live = document.getElementById("live");
  const oldest = document.getElementById("oldest-age");
  let current = 0;
  let toastTimer = null;

  const cards = () => Array.from(grid.querySelectorAll(".review-card:not(.gone)"));

  function toast(text, isError) {
    toastBox.textContent = text;
    toastBox.className = "show" + (isError ? " error" : "");
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toastBox.className = ""; }, isError ? 6000 : 2500);
  }

  // --- focus and selection ----------------------------------------------------------------
  function focusCard(index, keepFocus) {
    const list = cards();
    if (!list.length) return;
    current = Math.max(0, Math.min(index, list.length - 1));
    const card = list[current];
    // Moving on blurs what was revealed elsewhere; the current card keeps its state.
    list.forEach((c) => {
      if (c === card) return;
      c.classList.remove("current");
      if (window.Pictures) window.Pictures.hideAll(c);
    });
    card.classList.add("current");
    // A picture's button keeps the focus (Enter again hides it); anything else, the card.
    if (!(keepFocus && card.contains(document.activeElement))) card.focus({preventScroll: true});
    card.scrollIntoView({block: "nearest", behavior: "smooth"});
  }

  function selected() {
    return cards().filter((c) => c.querySelector("input[name=items]").checked);
  }

  function updateSelection() {
    cards().forEach((c) => {
      c.classList.toggle("selected", c.querySelector("input[name=items]").checked);
    });
    document.getElementById("selection-count").textContent = `${selected().length} selected`;
  }

  function toggleSelect() {
    const card = cards()[current];
    if (!card) return;
    const box = card.querySelector("input[name=items]");
    box.checked = !box.checked;
    updateSelection();
  }

  // --- decisions --------------------------------------------------------------------------
  function reasonGiven() {
    return Boolean(reasonChoice.value.trim() || reasonText.value.trim());
  }

  function removeCards(ids) {
    const before = current;
    ids.forEach((id) => {
      const card = grid.querySelector(`.review-card[data-id="${id}"]`);
      if (card) { card.classList.add("gone"); card.remove(); }
    });
    if (!cards().length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.innerHTML = "All done here. Fetch more (<kbd>f</kbd>).";
      grid.append(li);
      document.getElementById("release").disabled = true;
      document.getElementById("fetch").textContent = "Fetch";
    }
    focusCard(before);
    updateSelection();
  }

  function markLost(card, text) {
    card.classList.add("lost");
    card.querySelectorAll("button, input").forEach((el) => { el.disabled = true; });
    card.querySelector("input[name=items]").checked = false;
    card.querySelector(".state").textContent = text;
  }

  async function decide(decision, targets) {
    targets = targets || (selected().length ? selected() : cards().slice(current, current + 1));
    targets = targets.filter((c) => !c.classList.contains("lost"));
    if (!targets.length) return;
    if (decision === "reject" && !reasonGiven()) {
      toast("A rejection needs a reason: pick one or write one.", true);
      reasonChoice.focus();
      return;
    }
    const body = new FormData(decideForm);
    body.set("decision", decision);
    body.delete("items");
    let url = root.dataset.decideUrl;
    if (targets.length === 1) {
      url = targets[0].dataset.decideUrl;
    } else {
      targets.forEach((c) => body.append("items", c.dataset.id));
    }
    targets.forEach((c) => c.classList.add("busy"));
    let answer = {};
    let response;
    try {
      response = await fetch(url, {
        method: "POST", body, headers: {Accept: "application/json"}, credentials: "same-origin",
      });
      answer = await response.json();
    } catch (err) {
      targets.forEach((c) => c.classList.remove("busy"));
      toast("The server did not answer; nothing was decided. Try again.", true);
      return;
    }
    targets.forEach((c) => c.classList.remove("busy"));
    if (response.status === 400 || response.status === 403) {
      toast(answer.detail || "Refused.", true);
      return;
    }
    (answer.conflicts || []).forEach((c) => {
      const card = grid.querySelector(`.review-card[data-id="${c.id}"]`);
      if (card) markLost(card, c.detail);
    });
    if (response.status === 409 && !answer.conflicts && targets.length === 1) {
      markLost(targets[0], answer.detail);
    }
    if (answer.decided && answer.decided.length) {
      removeCards(answer.decided);
      reasonText.value = "";
      reasonChoice.value = "";
    }
    toast(answer.detail || "Done.", response.status !== 200);
  }

  decideForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const button = event.submitter;
    if (!button) return;
    const card = button.closest(".review-card");
    if (card) {
      focusCard(cards().indexOf(card));
      decide(button.value, [card]);
    } else if (!selected().length) {
      toast("Select items first (x), or use a card's own buttons.", true);
    } else {
      decide(button.value, selected());
    }
  });

  grid.addEventListener("change", (event) => {
    if (event.target.name === "items") updateSelection();
  });
  grid.addEventListener("click", (event) => {
    const card = event.target.closest(".review-card");
    const pic = event.target.closest("button.pic");  // it reveals itself (reveal.js)
    if (card && (pic || !event.target.closest("button, a, input, label"))) {
      focusCard(cards().indexOf(card), Boolean(pic));
    }
  });

  // --- keyboard ---------------------------------------------------------------------------
  function typing(target) {
    return target.closest("input:not([type=checkbox]), select, textarea");
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    const actions = {
      a: () => decide("approve"),
      r: () => decide("reject"),
      j: () => focusCard(current + 1),
      ArrowRight: () => focusCard(current + 1),
      k: () => focusCard(current - 1),
      ArrowLeft: () => focusCard(current - 1),
      x: toggleSelect,
      f: () => fetchForm.requestSubmit(),
      u: () => { if (cards().length) releaseForm.requestSubmit(); },
      "/": () => reasonText.focus(),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  // --- blur and greyscale: static/js/reveal.js (keys v, b and g); the root mirrors the blur --
  function showBlur(on) { root.classList.toggle("blur", on); }
  document.addEventListener("pictures:prefs", (event) => showBlur(event.detail.blur));
  if (window.Pictures) showBlur(window.Pictures.state.blur);

  // --- live counts ------------------------------------------------------------------------
  function showAge() {
    const since = oldest.dataset.since;
    if (!since) { oldest.textContent = "–"; return; }
    const s = Math.max(0, Math.round((Date.now() - Date.parse(since)) / 1000));
    oldest.textContent = s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m`
      : `${Math.round(s / 3600)}h`;
  }

  function showCounts(data) {
    document.getElementById("pending-count").textContent = data.pending;
    document.getElementById("claimed-others").textContent = data.claimed_by_others;
    document.getElementById("mine-count").textContent = data.claimed_by_me;
    oldest.dataset.since = data.oldest_pending_at || "";
    showAge();
    live.classList.add("flash");
    setTimeout(() => live.classList.remove("flash"), 300);
  }

  // Close codes after which a new socket would be refused too (accounts/sessions.py): the
  // session ended (log-out: 4401) or the account may not review (ban, deactivation: 4403).
  // The page stops reconnecting and says why; other closes (a restart) are retried.
  const ENDED = {
    4401: "Signed out — sign in again to see live counts",
    4403: "No permission to review any more — live counts stopped",
  };
  function showEnded(code) {
    live.classList.remove("on");
    live.classList.add("ended");
    live.title = "";
    if (code === 4401) {  // this page, reloaded, leads through the log-in form and back
      const link = document.createElement("a");
      link.href = location.pathname + location.search;
      link.textContent = ENDED[code];
      live.replaceChildren(link);
    } else {
      live.textContent = ENDED[code];
    }
  }

  let retry = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    socket.onopen = () => { retry = 500; live.textContent = "live"; live.classList.add("on"); };
    socket.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "counts") showCounts(data);
    };
    socket.onclose = (event) => {
      if (ENDED[event.code]) { showEnded(event.code); return; }
      live.textContent = "offline";
      live.classList.remove("on");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 15000);
    };
  }
  connect();
  setInterval(showAge, 1000);

  // --- leases -----------------------------------------------------------------------------
  const csrf = decideForm.querySelector("[name=csrfmiddlewaretoken]").value;
  async function heartbeat() {
    if (!cards().length) return;
    try {
      const response = await fetch(root.dataset.heartbeatUrl, {
        method: "POST", headers: {Accept: "application/json", "X-CSRFToken": csrf},
        credentials: "same-origin",
      });
      if (!response.ok) return;
      const held = new Set((await response.json()).held);
      cards().forEach((card) => {
        if (!held.has(card.dataset.id) && !card.classList.contains("lost")) {
          markLost(card, "Your lease ran out and the item went back to the queue.");
        }
      });
    } catch (e) { /* offline: the next beat tries again */ }
  }
  const minutes = Number(root.dataset.leaseMinutes) || 10;
  setInterval(heartbeat, Math.min(60, minutes * 20) * 1000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") heartbeat();
  });

  focusCard(0);
  updateSelection();
})();
