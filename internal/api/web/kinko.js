// kinko console: the WebAuthn ceremonies. Served from the console's own
// assets under script-src 'self'; no inline script, no code from
// elsewhere. Forms marked data-login sign in, data-enrol registers a
// credential with an enrolment code, data-sign signs the exact command
// the form gives (the server answers sign=challenge with its digest).
"use strict";
(function () {
  function b64u(buf) {
    var b = new Uint8Array(buf), s = "";
    for (var i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function unb64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) s += "=";
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  function credJSON(c) {
    var r = c.response;
    var o = { id: c.id, rawId: b64u(c.rawId), type: c.type, response: { clientDataJSON: b64u(r.clientDataJSON) },
      clientExtensionResults: c.getClientExtensionResults ? c.getClientExtensionResults() : {} };
    if (r.attestationObject) {
      o.response.attestationObject = b64u(r.attestationObject);
      if (r.getTransports) o.response.transports = r.getTransports();
    } else {
      o.response.authenticatorData = b64u(r.authenticatorData);
      o.response.signature = b64u(r.signature);
      if (r.userHandle) o.response.userHandle = b64u(r.userHandle);
    }
    return o;
  }
  function creationOptions(pk) {
    pk.challenge = unb64u(pk.challenge);
    pk.user.id = unb64u(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = unb64u(c.id); });
    return pk;
  }
  function requestOptions(pk) {
    pk.challenge = unb64u(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = unb64u(c.id); });
    return pk;
  }
  function status(form, text, bad) {
    var el = form.querySelector(".sign-status") || document.getElementById("sign-status");
    if (!el) {
      el = document.createElement("div");
      el.className = "sign-status";
      form.appendChild(el);
    }
    el.textContent = text;
    el.className = "sign-status " + (bad ? "err" : "ok");
  }
  function post(url, body, form) {
    var opts = { method: "POST", credentials: "same-origin" };
    if (form) {
      opts.body = new URLSearchParams(body);
    } else {
      opts.headers = { "Content-Type": "application/json" };
      opts.body = JSON.stringify(body);
    }
    return fetch(url, opts).then(function (res) {
      return res.json().then(function (j) {
        if (!res.ok && res.status !== 428) throw new Error(j.detail || j.title || ("HTTP " + res.status));
        return j;
      });
    });
  }
  function hidden(form, name, value) {
    var el = form.querySelector('input[type=hidden][name="' + name + '"]');
    if (!el) {
      el = document.createElement("input");
      el.type = "hidden";
      el.name = name;
      form.appendChild(el);
    }
    el.value = value;
  }

  function onLogin(form, ev) {
    ev.preventDefault();
    var name = form.querySelector("[name=name]").value;
    status(form, "touch your security key or confirm your passkey…");
    post("/v1/operators/login/begin", { operator: name }).then(function (o) {
      return navigator.credentials.get({ publicKey: requestOptions(o.public_key) });
    }).then(function (c) {
      hidden(form, "credential", JSON.stringify(credJSON(c)));
      form.submit();
    }).catch(function (e) { status(form, "sign-in failed: " + e.message, true); });
  }

  function onEnrol(form, ev) {
    ev.preventDefault();
    var op = form.querySelector("[name=operator]").value, code = form.querySelector("[name=code]").value;
    var label = (form.querySelector("[name=label]") || { value: "" }).value;
    status(form, "follow your browser to create the credential…");
    post("/v1/operators/enrol/begin", { operator: op, code: code }).then(function (o) {
      return navigator.credentials.create({ publicKey: creationOptions(o.public_key) });
    }).then(function (c) {
      return post("/v1/operators/enrol/finish", { operator: op, code: code, label: label, credential: credJSON(c) });
    }).then(function (r) {
      status(form, r.active ? "enrolled: you can sign in now (fingerprint " + r.fingerprint + ")"
        : "registered, pending: read the fingerprint " + r.fingerprint + " to the two admins who approve it");
      form.setAttribute("data-enrolled", r.active ? "active" : "pending");
      var fp = document.getElementById("fingerprint");
      if (fp) fp.textContent = r.fingerprint;
    }).catch(function (e) { status(form, "enrolment failed: " + e.message, true); });
  }

  function onSign(form, ev) {
    ev.preventDefault();
    var fd = new FormData(form);
    fd.set("sign", "challenge");
    status(form, "sign with your security key or passkey…");
    post(form.action, fd, true).then(function (ch) {
      if (!ch.challenge) throw new Error(ch.detail || ch.title || "no challenge");
      if (ch.id) hidden(form, "sign_id", ch.id);
      if (ch.expires) hidden(form, "sign_expires", String(ch.expires));
      var pk = { challenge: unb64u(ch.challenge), rpId: ch.rp_id, userVerification: "required", timeout: 120000,
        allowCredentials: (ch.credentials || []).map(function (id) { return { type: "public-key", id: unb64u(id) }; }) };
      return navigator.credentials.get({ publicKey: pk });
    }).then(function (c) {
      hidden(form, "assertion", JSON.stringify(credJSON(c)));
      form.submit();
    }).catch(function (e) { status(form, "not signed: " + e.message, true); });
  }

  document.addEventListener("submit", function (ev) {
    var f = ev.target;
    if (f.hasAttribute("data-login")) onLogin(f, ev);
    else if (f.hasAttribute("data-enrol")) onEnrol(f, ev);
    else if (f.hasAttribute("data-sign")) onSign(f, ev);
  });
})();
