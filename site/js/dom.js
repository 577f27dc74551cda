// The page's elements by id, and the status line.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** Show text in the map's status line; an empty text hides it. */
export function setStatus(text) {
  const status = $("status");
  status.textContent = text;
  status.hidden = !text;
}
