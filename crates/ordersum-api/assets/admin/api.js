// The JSON API under /admin/api/: GET to read, POST (with the page's CSRF
// token) to act; a 401 sends the browser back to the sign-in page.

const csrfMeta = document.querySelector('meta[name="csrf-token"]');
const csrf = csrfMeta ? csrfMeta.getAttribute("content") || "" : "";

/** The session ended: the page is already on its way to the sign-in form. */
export class SignedOut extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(path, method) {
  const init = {
    method: method || "GET",
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json" },
  };
  if (init.method !== "GET") init.headers["X-CSRF-Token"] = csrf;
  const response = await fetch(`/admin/api/${path}`, init);
  if (response.status === 401) {
    location.href = "/admin";
    throw new SignedOut("signed out");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const message = body && typeof body.error === "string" ? body.error : `HTTP ${response.status}`;
    throw new ApiError(response.status, message);
  }
  return body;
}
