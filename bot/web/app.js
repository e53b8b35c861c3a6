// Coso web chat: plain ES2017 so it runs on an old phone's browser, with no build step.
// The page's own words come from the server's catalogs (the JSON block in the page, then
// /api/strings) in the language the person chose with /lang, the browser's before login;
// everything the bot says comes already in that language. Nothing is worded here.
"use strict";

(function () {
  var MAX_RETRY_MS = 15000;
  var lang = "";  // the language of the words in T, as the server named it
  var T = {};
  // Bumped at every login and logout, so the loops of an earlier session end themselves.
  var state = { lastId: 0, generation: 0, replayed: 0, mine: [] };
  // What the person sent, kept in this tab only (sessionStorage: gone when the tab closes,
  // and at log-out), so that a reload shows both sides of the chat: the server keeps the
  // bot's messages, never what was typed. Each is placed after the bot's message that was
  // the last on screen when it was sent.
  var MINE_KEY = "coso.mine";
  var MINE_AT_MOST = 200;
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;  // never innerHTML: bot texts quote what people typed
    return node;
  }

  function sleep(ms) { return new Promise(function (done) { setTimeout(done, ms); }); }

  // crypto.randomUUID needs https; getRandomValues also works on a LAN address over http.
  function newId() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function setStatus(text) {
    $("status").textContent = text || "";
    $("status").hidden = !text;
  }

  function useStrings(page) {
    lang = page.lang;
    T = page.strings;
    applyStrings();
  }

  // The person's language changed (a /lang reply, a login as someone else): the page's own
  // words again, in it. Failing (offline), the next answer from the server tries again.
  async function loadStrings() {
    try {
      var response = await api("GET", "/api/strings");
      if (response.ok) useStrings(await response.json());
    } catch (e) { /* offline: retried when the next answer names the language again */ }
  }

  function applyStrings() {
    document.documentElement.lang = lang;
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n]"), function (node) {
      node.textContent = T[node.getAttribute("data-i18n")];
    });
    Array.prototype.forEach.call(document.querySelectorAll("[data-i18n-label]"),
                                 function (node) {
      var label = T[node.getAttribute("data-i18n-label")];
      node.setAttribute("aria-label", label);
      node.title = label;
    });
    $("text").placeholder = T.placeholder;
  }

  function api(method, path, body) {
    var init = { method: method, credentials: "same-origin", cache: "no-store", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init);
  }

  async function readMessage(response) {
    try { return (await response.json()).message || ""; } catch (e) { return ""; }
  }

  // --- views -------------------------------------------------------------------------------

  function showLogin() {
    state.generation += 1;
    $("chat-view").hidden = true;
    $("logout").hidden = true;
    $("login-view").hidden = false;
    setStatus("");
    $("code").focus();
  }

  function showChat() {
    $("login-view").hidden = true;
    $("chat-view").hidden = false;
    $("logout").hidden = false;
  }

  function scrollDown() { var log = $("log"); log.scrollTop = log.scrollHeight; }

  // Whether the reader is at the end of the log (so new content should keep it in view).
  function atBottom() {
    var log = $("log");
    return log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  }

  function loadMine() {
    try { return JSON.parse(sessionStorage.getItem(MINE_KEY) || "[]"); } catch (e) { return []; }
  }

  function keepMine(text) {
    var mine = loadMine();
    mine.push({ after: state.lastId, text: text });
    mine = mine.slice(-MINE_AT_MOST);
    try { sessionStorage.setItem(MINE_KEY, JSON.stringify(mine)); } catch (e) { /* full: fine */ }
    state.mine = mine;
    state.replayed = mine.length;
  }

  function forgetMine() {
    try { sessionStorage.removeItem(MINE_KEY); } catch (e) { /* not available: nothing kept */ }
    state.mine = [];
    state.replayed = 0;
  }

  // After a reload: the person's own messages sent before the bot's message `upTo` came
  // (read from the tab once per page, at the chat's start: see startChat).
  function replayMine(upTo) {
    var mine = state.mine;
    while (state.replayed < mine.length && mine[state.replayed].after <= upTo) {
      showMine(String(mine[state.replayed].text || ""));
      state.replayed += 1;
    }
  }

  function addMine(text, keep) {
    if (keep) keepMine(text);
    return showMine(text);
  }

  function showMine(text) {
    var item = el("li", "msg me");
    item.appendChild(el("div", "bubble", text));
    $("log").appendChild(item);
    scrollDown();
    return item;
  }

  function addBot(message) {
    if (message.id <= state.lastId) return;  // a poll overlapping a retry
    state.lastId = message.id;
    // Read before the menu comes or goes: it changes the log's height, and a chart below
    // the fold would then not be followed when it loads.
    var follow = atBottom();
    if (message.menu) showMenu(message.menu);
    else if (message.question) showMenu([]);
    if (message.edit) { editBot(message); return; }
    if (message.retire) { retireQuestions(); return; }
    if (message.question) retireQuestions();
    var item = el("li", message.urgent ? "msg bot urgent" : "msg bot");
    item.dataset.id = String(message.id);
    if (message.question) item.classList.add("question");
    var bubble = el("div", "bubble");
    if (message.photo) {
      var img = el("img", "photo");
      // An image has no height until it loads: scroll again then, or the chart would sit
      // below the fold (unless the reader has scrolled up to read something older).
      img.addEventListener("load", function () { if (follow) scrollDown(); });
      img.alt = message.text || "";
      img.src = message.photo;
      bubble.appendChild(img);
    }
    if (message.text) bubble.appendChild(textWithLinks(message.text));
    if (message.document) {
      var link = el("a", "file", "📄 " + (message.filename || T.file));
      link.href = message.document;
      link.setAttribute("download", message.filename || "");
      bubble.appendChild(link);
    }
    item.appendChild(bubble);
    if (message.buttons && message.buttons.length) {
      item.appendChild(choices(message.buttons, message.id));
    }
    $("log").appendChild(item);
    scrollDown();
  }

  // An edit names an earlier bubble: a multi-select's ticks change in it, or an answered
  // question's buttons go. A bubble not on the page (another device's) is left alone.
  function editBot(message) {
    var item = $("log").querySelector('li[data-id="' + message.edit + '"]');
    if (!item) return;
    var old = item.querySelector(".choices");
    if (old) old.remove();
    if (!message.keyboard_only) {
      var text = item.querySelector(".text");
      if (text) text.replaceWith(textWithLinks(message.text || ""));
    }
    if (message.buttons && message.buttons.length) {
      item.appendChild(choices(message.buttons, message.edit));
    }
  }

  // A new question or a typed answer: the buttons of older questions would only be told
  // "no longer open", so they go (what the person chose shows in their own bubble).
  function retireQuestions() {
    Array.prototype.forEach.call($("log").querySelectorAll("li.question .choices"),
                                 function (row) { row.remove(); });
  }

  // The role's commands, when no question is open; a question hides them.
  function showMenu(items) {
    var menu = $("menu");
    menu.textContent = "";
    items.forEach(function (entry) {
      var button = el("button", "command", entry.label);
      button.type = "button";
      button.addEventListener("click", function () {
        showMenu([]);
        send({ text: entry.text }, entry.label);
      });
      menu.appendChild(button);
    });
    menu.hidden = items.length === 0;
    menu.scrollLeft = 0;  // its first commands in view, whatever was scrolled to before
  }

  // Links to this very server (the dashboard's login link, a signed file) can be tapped;
  // everything else, a link a person typed into a report included, stays plain text.
  function textWithLinks(text) {
    var paragraph = el("p", "text");
    var pattern = /https?:\/\/[^\s<>"]+/g;
    var last = 0;
    var match;
    while ((match = pattern.exec(text)) !== null) {
      var url = match[0].replace(/[.,;:!?)]+$/, "");
      var own = false;
      try { own = new URL(url).origin === window.location.origin; } catch (e) { own = false; }
      if (!own) continue;
      paragraph.appendChild(document.createTextNode(text.slice(last, match.index)));
      var link = el("a", "link", url);
      link.href = url;
      link.rel = "noopener";
      paragraph.appendChild(link);
      last = match.index + url.length;
    }
    paragraph.appendChild(document.createTextNode(text.slice(last)));
    return paragraph;
  }

  // The answers, then the steering (Skip, Back, Cancel) on a row of their own. A tap names
  // its bubble, so the bot can change that bubble (ticks) or take its buttons away.
  function choices(buttons, messageId) {
    var row = el("div", "choices");
    var steering = el("div", "steering");
    buttons.forEach(function (b) {
      var kind = b.steer ? "choice steer" : b.toggle ? "choice toggle " + b.toggle : "choice";
      var button = el("button", kind, b.label);
      if (b.toggle) button.setAttribute("aria-pressed", b.toggle === "on" ? "true" : "false");
      button.type = "button";
      button.addEventListener("click", function () {
        send({ choice: b.payload, message: String(messageId) }, b.toggle ? null : b.label);
      });
      (b.steer ? steering : row).appendChild(button);
    });
    if (steering.childNodes.length) row.appendChild(steering);
    return row;
  }

  // --- talking to the server ---------------------------------------------------------------

  // Long polling: the server answers at once when there is news, else after about 25 s.
  async function poll(generation) {
    var delay = 1000;
    var first = true;
    while (generation === state.generation) {
      try {
        var response = await api("GET", "/api/messages?after=" + state.lastId +
                                 (first ? "&wait=0" : ""));
        if (generation !== state.generation) return;
        if (response.status === 401) { showLogin(); return; }
        if (!response.ok) throw new Error("status " + response.status);
        var messages = await response.json();
        // The language these are in: the page's own words follow it.
        var spoken = response.headers.get("Content-Language");
        if (spoken && spoken !== lang) await loadStrings();
        if (generation !== state.generation) return;
        if (first) showChat();
        first = false;
        delay = 1000;
        setStatus("");
        messages.forEach(function (message) {
          replayMine(message.id - 1);
          addBot(message);
          replayMine(message.id);
        });
        replayMine(state.lastId);
      } catch (e) {
        if (generation !== state.generation) return;
        setStatus(T.offline);
        await sleep(delay);
        delay = Math.min(delay * 2, MAX_RETRY_MS);
      }
    }
  }

  function startChat() {
    state.generation += 1;
    state.lastId = 0;
    state.replayed = 0;
    state.mine = loadMine();
    $("log").textContent = "";
    showMenu([]);
    poll(state.generation);
  }

  // One id per message: a retry after a lost answer is recognised and handled once.
  async function send(body, shown) {
    var generation = state.generation;
    var item = shown === null ? null : addMine(shown, true);  // a tick in its own bubble too
    body.id = newId();
    var delay = 1000;
    while (generation === state.generation) {
      try {
        var response = await api("POST", "/api/send", body);
        if (response.status === 401) { showLogin(); return; }
        if (response.ok) { setStatus(""); return; }
        if (response.status < 500) {
          if (item) item.appendChild(el("p", "error", T.sendFailed));
          else setStatus(T.sendFailed);
          return;
        }
      } catch (e) { /* offline: retried below with the same id */ }
      setStatus(T.offline);
      await sleep(delay);
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }

  // --- photos ------------------------------------------------------------------------------

  // The server checks the photo (what it is, its size) and answers, in the person's
  // language, why one is refused; the page only sends the bytes and shows the result.
  async function sendPhoto(file) {
    var generation = state.generation;
    var item = addMine(T.photoSending);
    var bubble = item.querySelector(".bubble");
    var path = "/api/photo?id=" + newId();
    var delay = 1000;
    while (generation === state.generation) {
      try {
        var response = await fetch(path, {
          method: "POST", credentials: "same-origin", cache: "no-store",
          headers: { "Content-Type": "application/octet-stream" }, body: file
        });
        if (response.status === 401) { showLogin(); return; }
        if (response.ok) {
          setStatus("");
          showMyPhoto(bubble, (await response.json()).photo);
          return;
        }
        if (response.status < 500) {
          bubble.textContent = T.photoRefused;
          item.appendChild(el("p", "error", (await readMessage(response)) || T.sendFailed));
          scrollDown();
          return;
        }
      } catch (e) { /* offline: retried below with the same id */ }
      setStatus(T.offline);
      await sleep(delay);
      delay = Math.min(delay * 2, MAX_RETRY_MS);
    }
  }

  function showMyPhoto(bubble, url) {
    var follow = atBottom();
    var img = el("img", "photo");
    img.addEventListener("load", function () { if (follow) scrollDown(); });
    img.alt = T.photoSent;
    img.src = url;
    bubble.textContent = "";
    bubble.classList.add("with-photo");
    bubble.appendChild(img);
  }

  function pickPhoto() {
    var input = $("photo");
    var file = input.files && input.files[0];
    input.value = "";  // choosing the same photo again is a new send
    if (file) sendPhoto(file);
  }

  async function login(event) {
    event.preventDefault();
    var code = $("code").value.trim();
    if (!code) { $("code").focus(); return; }
    var error = $("login-error");
    error.hidden = true;
    $("login-button").disabled = true;
    try {
      var response = await api("POST", "/api/login", { code: code, name: $("name").value });
      if (response.ok) {
        $("code").value = "";
        forgetMine();  // perhaps another person's, on this tab
        startChat();
        $("text").focus();
        return;
      }
      error.textContent = (await readMessage(response)) || T.loginFailed;
    } catch (e) {
      error.textContent = T.offline;
    } finally {
      $("login-button").disabled = false;
    }
    error.hidden = false;
  }

  async function logout() {
    try { await api("POST", "/api/logout", {}); } catch (e) { /* the cookie may stay; harmless */ }
    forgetMine();
    $("log").textContent = "";
    showLogin();
  }

  function submitText(event) {
    event.preventDefault();
    var input = $("text");
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    input.focus();
    send({ text: text }, text);
  }

  document.addEventListener("DOMContentLoaded", function () {
    useStrings(JSON.parse($("page-strings").textContent));
    $("login-form").addEventListener("submit", login);
    $("composer").addEventListener("submit", submitText);
    $("attach").addEventListener("click", function () { $("photo").click(); });
    $("photo").addEventListener("change", pickPhoto);
    $("logout").addEventListener("click", logout);
    startChat();  // a 401 on the first look shows the login form instead
  });
})();
