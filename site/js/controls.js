// The side panel's fixed parts: the topic and heat legends, the layer
// switches, the credit line, and the map switcher (shown when the index
// lists more than one map; picking one opens it afresh, without answers).
import { $ } from "./dom.js";
import { requestRender } from "./draw.js";
import { heatGradientCss } from "./heatmap.js";
import { mapSearch, mapTitle } from "./maps.js";
import { topicColour } from "./render.js";
import { state } from "./state.js";

export function renderLegends() {
  const topics = state.manifest.topics;
  $("heat-legend").style.background = heatGradientCss();
  const list = $("topic-legend");
  list.replaceChildren();
  topics.forEach((name, i) => {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = topicColour(i, topics);
    const text = document.createElement("span");
    text.textContent = name;
    li.append(swatch, text);
    list.append(li);
  });
  $("topics-heading").parentElement.hidden = topics.length === 0;
  $("attribution-detail").textContent = state.manifest.attribution;
}

export function installLayerSwitches() {
  for (const key of Object.keys(state.layers)) {
    $("layer-" + key).addEventListener("change", (event) => {
      state.layers[key] = event.target.checked;
      requestRender();
    });
  }
}

/** Name the map on show in the URL (so every link made from it opens it) and offer the others. */
export function installMapSwitcher() {
  const search = mapSearch(location.search, state.map.id);
  if (search !== location.search) history.replaceState(null, "", location.pathname + search + location.hash);
  const select = $("map-select");
  select.replaceChildren();
  for (const entry of state.maps) {
    const option = document.createElement("option");
    option.value = entry.id;
    option.textContent = mapTitle(entry);
    option.selected = entry === state.map;
    select.append(option);
  }
  $("map-choice").hidden = state.maps.length < 2;
  select.addEventListener("change", () => {
    location.assign(location.pathname + mapSearch(location.search, select.value));
  });
}
