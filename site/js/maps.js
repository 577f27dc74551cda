// The maps on offer: data/index.json lists one entry per model the workflow
// has mapped (knowledge_map/sitedata.py write_site_index), each with its data
// in data/<id>/. The URL's query names the map on show (?map=<id>), so a
// shared link opens the same map. The index and the URL are both input:
// only well-formed, listed ids are ever used, and an id is never a path.

/** A map id: model_slug's characters (letters, digits, ".", "_", "-"), not starting with "." or "-". */
export const MAP_ID = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;

/** The index's well-formed entries ({id, model, count}), the first of each id, in the index's order. */
export function listedMaps(index) {
  const entries = index && Array.isArray(index.maps) ? index.maps : [];
  const seen = new Set();
  const maps = [];
  for (const entry of entries) {
    if (!entry || typeof entry.id !== "string" || !MAP_ID.test(entry.id) || seen.has(entry.id)) continue;
    seen.add(entry.id);
    maps.push(entry);
  }
  return maps;
}

/** The listed map the query names (?map=<id>), else the first one; null when none is listed. */
export function chooseMap(maps, search) {
  const wanted = new URLSearchParams(String(search || "")).get("map");
  return maps.find((m) => m.id === wanted) || maps[0] || null;
}

/** The query string with map=<id> set, its other parameters kept. */
export function mapSearch(search, id) {
  const params = new URLSearchParams(String(search || ""));
  params.set("map", id);
  return "?" + params.toString();
}

/** The data folder of map id under root (which ends in "/"). */
export function mapBase(root, id) {
  return root + encodeURIComponent(id) + "/";
}

/** The switcher's line for an entry: its model's name and article count. */
export function mapTitle(entry) {
  const name = typeof entry.model === "string" && entry.model ? entry.model : entry.id;
  return Number.isFinite(entry.count) ? `${name} (${entry.count.toLocaleString("en")} articles)` : name;
}
