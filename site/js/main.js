// The knowledge map page: loads the map named by the URL (maps.js) and wires
// the features together. Each feature is a module around the one state
// object (state.js): drawing (draw.js), pan and zoom (input.js), the hover
// card (card.js), search (search-ui.js), the quiz (quiz-ui.js), the estimate
// and its layer (heat-ui.js), sharing and reset (share-ui.js), legends and
// switches (controls.js). Every piece of data text reaches the page through
// textContent (never innerHTML): titles, excerpts, labels and questions are
// text, whatever characters they hold.
import { installLayerSwitches, installMapSwitcher, renderLegends } from "./controls.js";
import { Details, loadJson, loadKnowledge, loadManifest, loadPoints } from "./data.js";
import { $, setStatus } from "./dom.js";
import { buildDensity, render, requestRender, resize, screenOf, worldOf, worldPositions } from "./draw.js";
import { chooseQuestion, renderReadNext, updateHeat } from "./heat-ui.js";
import { installMapInput } from "./input.js";
import { parseLists } from "./knowledge.js";
import { chooseMap, listedMaps, mapBase } from "./maps.js";
import { Quiz } from "./quiz.js";
import { installQuiz } from "./quiz-ui.js";
import { buildIndex, packedPalette } from "./render.js";
import { foldTitles } from "./search.js";
import { installSearch, selectArticle } from "./search-ui.js";
import { decodeState } from "./share.js";
import { installShareAndReset, restoreFromHash } from "./share-ui.js";
import { state, view } from "./state.js";

const DATA = "data/";

async function start() {
  installMapInput();
  resize();
  state.maps = listedMaps(await loadJson(DATA, "index.json"));
  state.map = chooseMap(state.maps, location.search);
  if (!state.map) throw new Error(`${DATA}index.json lists no map`);
  state.base = mapBase(DATA, state.map.id);
  installMapSwitcher();
  const manifest = await loadManifest(state.base);
  state.manifest = manifest;
  state.details = new Details(state.base, manifest);
  const [points, labels, questions] = await Promise.all([
    loadPoints(state.base, manifest),
    loadJson(state.base, manifest.files.labels, manifest),
    loadJson(state.base, manifest.files.questions, manifest),
  ]);
  state.points = points;
  state.world = worldPositions(points);
  state.labels = labels.levels.length ? labels : null;
  state.palette = packedPalette(manifest.topics);
  const saved = decodeState(location.hash, questions.length).view;
  if (saved) view.set(saved.cx, saved.cy, saved.zoom);
  renderLegends();
  installLayerSwitches();
  installSearch();
  render();
  setStatus("");
  // After the first frame: the quiz and its knowledge lists (8 KB a question), the hover index, the
  // density layer, then titles.
  state.lists = parseLists(await loadKnowledge(state.base, manifest), manifest.knowledge);
  state.quiz = new Quiz(questions, chooseQuestion);
  restoreFromHash();
  installQuiz();
  installShareAndReset();
  await new Promise((resolve) => setTimeout(resolve, 0));
  state.index = buildIndex(points, Math.max(16, Math.min(1024, Math.round(Math.sqrt(points.n / 4)))));
  buildDensity();
  requestRender();
  state.titles = await loadJson(state.base, manifest.files.titles, manifest);
  if (state.titles.length !== manifest.count) throw new Error(`titles: ${state.titles.length}, expected ${manifest.count}`);
  state.folded = foldTitles(state.titles);
  renderReadNext();
  if (state.highlight < 0 && $("search-input").value) $("search-input").dispatchEvent(new Event("input"));
}

const ready = start().catch((error) => {
  setStatus("The map could not be loaded: " + error.message);
  console.error(error);
  throw error;
});

// A small read-only handle for tests and benchmarks (no data flows in through it).
window.km = {
  ready,
  state,
  view,
  render,
  screenOf,
  worldOf,
  rowOf: (title) => (state.titles ? state.titles.indexOf(title) : -1),
  updateHeat: () => updateHeat(),
  titlesReady: () => state.titles !== null && state.index !== null,
  select: (row) => selectArticle(row),
};
