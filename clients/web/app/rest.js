// The REST endpoints of SPEC.md §9 (same origin), with the bearer token in a header.
// An error answer: `code` (SPEC.md §8), and `field`, `reason` (§8.1) when the server
// gives them; screens show i18n.js's words for them, never `message` (English).
export class ApiError extends Error {
  constructor(status, code, message, body = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = body.field || null;
    this.reason = body.reason || null;
    this.retryAfter = body.retry_after ?? null;
  }
}

function errorFrom(status, body) {
  return new ApiError(status, body.code || (status >= 500 ? "unavailable" : "internal"), body.message || `HTTP ${status}`, body);
}

async function failure(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON: keep the status
  }
  return errorFrom(response.status, body);
}

export class Rest {
  constructor(base = "") {
    this.base = base;
    this.token = null;
  }

  headers(json) {
    const h = {};
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  /** `cookies`: send and keep this origin's cookies (the Pro Santé Connect flows'
   * HttpOnly cookies, SPEC.md §9.2); every other call omits them. */
  async call(method, path, body, { cookies = false } = {}) {
    const response = await fetch(this.base + path, {
      method,
      headers: this.headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: cookies ? "same-origin" : "omit",
      cache: "no-store",
    });
    if (!response.ok) throw await failure(response);
    return response.status === 204 ? null : response.json();
  }

  signUp(fields) {
    return this.call("POST", "/v1/accounts", fields, { cookies: Boolean(fields.pro_sante_connect) });
  }

  logIn(email, password, deviceId) {
    const body = { email, password };
    if (deviceId) body.device_id = deviceId;
    else body.device_name = "Navigateur web";
    return this.call("POST", "/v1/sessions", body);
  }

  logOut() {
    return this.call("DELETE", "/v1/sessions/current");
  }

  me() {
    return this.call("GET", "/v1/me");
  }

  rooms() {
    return this.call("GET", "/v1/rooms");
  }

  /** The directory (issue 8): practitioners matching `q`. */
  search(q) {
    return this.call("GET", `/v1/directory/search?q=${encodeURIComponent(q)}`);
  }

  /** Who is who: the cards of these user ids the caller may see (SPEC.md §9). */
  profiles(ids) {
    return this.call("GET", `/v1/profiles?users=${ids.map(encodeURIComponent).join(",")}`);
  }

  /** POST a document (a referral's PDF, JPEG or PNG, SPEC.md §9.1): sent in clear, read
   * and checked by the server, readable by the uploader until a booking names it. */
  async uploadDocument(file) {
    const query = new URLSearchParams({ kind: "document", content_type: file.type, name: file.name });
    const response = await fetch(`${this.base}/v1/attachments?${query}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": file.type },
      body: file,
      credentials: "omit",
    });
    if (!response.ok) throw await failure(response);
    return (await response.json()).attachment;
  }

  /** GET bytes that need the bearer (a referral's document, an identity photo):
   * {blob, name} (the name from Content-Disposition's filename*, if any). */
  async document(path) {
    const response = await fetch(this.base + path, { headers: this.headers(false), cache: "no-store", credentials: "omit" });
    if (!response.ok) throw await failure(response);
    const named = /filename\*=UTF-8''([^;]+)/i.exec(response.headers.get("Content-Disposition") || "");
    return { blob: await response.blob(), name: named ? decodeURIComponent(named[1]) : null };
  }

  /** PUT an identity photo (manual verification). */
  async putDocument(side, file) {
    const response = await fetch(`${this.base}/v1/verification/documents/${side}`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${this.token}`, "Content-Type": file.type || "application/octet-stream" },
      body: file,
      credentials: "omit",
    });
    if (!response.ok) throw await failure(response);
    return response.json();
  }

  /** POST a chat file's ciphertext with upload progress (fetch has none: XHR). */
  uploadChat(room, contentType, ciphertext, onProgress) {
    const query = new URLSearchParams({ kind: "chat", room, content_type: contentType });
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", `${this.base}/v1/attachments?${query}`);
      xhr.setRequestHeader("Authorization", `Bearer ${this.token}`);
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      xhr.upload.onprogress = (e) => e.lengthComputable && onProgress?.(e.loaded / e.total);
      xhr.onload = () => {
        let body = {};
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          // keep {}
        }
        if (xhr.status === 201) resolve(body.attachment);
        else reject(errorFrom(xhr.status, body));
      };
      xhr.onerror = () => reject(new ApiError(0, "unavailable", "network down"));
      xhr.send(new Blob([ciphertext]));
    });
  }

  /** GET an attachment's bytes, reporting progress from Content-Length. */
  async download(id, onProgress) {
    const response = await fetch(`${this.base}/v1/attachments/${encodeURIComponent(id)}`, {
      headers: this.headers(false),
      cache: "no-store",
    });
    if (!response.ok) throw await failure(response);
    const total = Number(response.headers.get("Content-Length")) || 0;
    const reader = response.body.getReader();
    const parts = [];
    let got = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      got += value.length;
      if (total) onProgress?.(got / total);
    }
    const out = new Uint8Array(got);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}
