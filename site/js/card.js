// The hover card: an article's title, topic, excerpt and link (the excerpt
// and link fetched when the card opens), or a label's region, size and
// keywords. Everything in it is set with textContent; only http(s) links.
import { $ } from "./dom.js";
import { requestRender } from "./draw.js";
import { labelAt } from "./labels.js";
import { state } from "./state.js";

/** Put the card next to screen point (sx, sy), inside the map. */
function placeCard(card, sx, sy) {
  const map = $("map");
  const w = card.offsetWidth;
  const h = card.offsetHeight;
  card.style.left = Math.min(Math.max(4, sx + 14), map.clientWidth - w - 4) + "px";
  card.style.top = (sy + 14 + h > map.clientHeight ? Math.max(4, sy - h - 14) : sy + 14) + "px";
}

/** Open the card of article row at (sx, sy); a pinned card stays until closed. */
export function showCard(row, sx, sy, pinned) {
  const card = $("card");
  state.pinned = pinned ? row : -1;
  card.dataset.row = String(row);
  $("card-title").textContent = state.titles ? state.titles[row] : "Loading titles…";
  const topic = state.points.topic[row];
  $("card-topic").textContent = topic < state.manifest.topics.length ? state.manifest.topics[topic] : "";
  $("card-excerpt").textContent = "…";
  const link = $("card-link");
  link.hidden = true;
  link.removeAttribute("href");
  card.hidden = false;
  placeCard(card, sx, sy);
  state.details.get(row).then(
    (d) => {
      if (card.dataset.row !== String(row)) return;
      $("card-excerpt").textContent = d.excerpt;
      if (d.url) {
        link.href = d.url;
        link.hidden = false;
      }
    },
    () => {
      if (card.dataset.row === String(row)) $("card-excerpt").textContent = "(excerpt unavailable)";
    },
  );
}

export function hideCard() {
  $("card").hidden = true;
  $("card").dataset.row = "";
  state.pinned = -1;
}

function showLabelCard(label, sx, sy) {
  const card = $("card");
  if (card.dataset.row === "label" && card.dataset.label === label.text) return;
  card.dataset.row = "label";
  card.dataset.label = label.text;
  $("card-title").textContent = label.text;
  const count = label.cell.count;
  $("card-topic").textContent = `${count.toLocaleString("en")} article${count === 1 ? "" : "s"} in this region`;
  const keywords = label.cell.keywords || [];
  $("card-excerpt").textContent = keywords.length ? `Keywords: ${keywords.join(", ")}` : "";
  $("card-link").hidden = true;
  card.hidden = false;
  placeCard(card, sx, sy);
}

/** The mouse is over article row (-1: none) at (sx, sy): show its card, or the label's there. */
export function hover(row, sx, sy) {
  if (state.pinned >= 0) return;
  // An empty spot on a label: the card names the region, its size and keywords.
  const label = row < 0 && sx !== undefined ? labelAt(state.placedLabels, sx, sy) : null;
  if (label) showLabelCard(label, sx, sy);
  else if (row < 0 && $("card").dataset.row === "label") hideCard();
  if (row === state.hover) return;
  state.hover = row;
  if (row >= 0) showCard(row, sx, sy, false);
  else if (!label) hideCard();
  requestRender();
}

/** A click on article row: open its page in a new tab, or pin its card when it has no link. */
export async function openArticle(row, sx, sy) {
  const d = await state.details.get(row);
  if (d.url) window.open(d.url, "_blank", "noopener");
  else showCard(row, sx, sy, true);
}
