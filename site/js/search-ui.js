// The search box: titles matching what is typed (search.js), picked by
// click, Enter or the arrow keys; a pick flies to the article, rings it and
// pins its card.
import { hideCard, showCard } from "./card.js";
import { $ } from "./dom.js";
import { flyTo, requestRender, screenOf, worldOf } from "./draw.js";
import { searchTitles } from "./search.js";
import { state, view } from "./state.js";

const RESULTS = 12;

/** One line of the result list: a muted note, or a button naming an article. */
function resultItem(text, row = -1) {
  const li = document.createElement("li");
  if (row < 0) {
    li.className = "muted";
    li.textContent = text;
    return li;
  }
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.row = String(row);
  button.textContent = text;
  button.addEventListener("click", () => selectArticle(row));
  li.append(button);
  return li;
}

function showResults() {
  const input = $("search-input");
  const list = $("search-results");
  list.replaceChildren();
  if (!input.value.trim()) {
    list.hidden = true;
    return;
  }
  if (!state.folded) {
    list.append(resultItem("Loading titles…"));
    list.hidden = false;
    return;
  }
  const rows = searchTitles(state.folded, input.value, RESULTS);
  for (const row of rows) list.append(resultItem(state.titles[row], row));
  if (!rows.length) list.append(resultItem("No article title contains that."));
  list.hidden = false;
}

/** Fly to article row, ring it and pin its card (search results and the reading list use it). */
export async function selectArticle(row) {
  $("search-results").hidden = true;
  $("search-input").value = state.titles[row];
  state.highlight = row;
  hideCard();
  const [x, y] = worldOf(row);
  await flyTo(x, y, Math.max(view.zoom, 8));
  const [sx, sy] = screenOf(row);
  showCard(row, sx, sy, true);
  requestRender();
}

export function installSearch() {
  const input = $("search-input");
  const list = $("search-results");
  let timer = 0;

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(showResults, 60);
  });
  input.addEventListener("keydown", (event) => {
    const first = list.querySelector("button");
    if (event.key === "Enter" && first) {
      event.preventDefault();
      clearTimeout(timer);
      showResults();
      const top = list.querySelector("button");
      if (top) selectArticle(Number(top.dataset.row));
    } else if (event.key === "ArrowDown" && first) {
      event.preventDefault();
      first.focus();
    } else if (event.key === "Escape") {
      list.hidden = true;
    }
  });
  list.addEventListener("keydown", (event) => {
    const buttons = [...list.querySelectorAll("button")];
    const at = buttons.indexOf(document.activeElement);
    if (event.key === "ArrowDown" && at < buttons.length - 1) buttons[at + 1].focus();
    else if (event.key === "ArrowUp") (at > 0 ? buttons[at - 1] : input).focus();
    else if (event.key === "Escape") input.focus();
    else return;
    event.preventDefault();
  });
}
