// The script of report.html (embedded by screening/interfaces/report_page.py): one DataTables table of
// every candidate per stack, built from the JSON columns beside it, criteria toggles, row details, and
// the plotly figures drawn when their container scrolls into view. window.screeningReport exposes the
// tables and a renderAll() for the browser tests.
const srcBytes = Uint8Array.from(atob(document.getElementById("dt-src").textContent.trim()), c => c.charCodeAt(0));
const moduleUrl = URL.createObjectURL(new Blob([srcBytes], {type: "text/javascript"}));
const {default: DataTable} = await import(moduleUrl);
URL.revokeObjectURL(moduleUrl);

const report = {tables: [], stacks: [], rendered: new Set(), ready: false};
window.screeningReport = report;

const escapeHtml = s => String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
function failedNames(bits, criteria) {
  const names = [];
  criteria.forEach((name, i) => { if (bits & (1 << i)) names.push(name); });
  return names;
}

function popcount(bits) {
  let n = 0;
  for (; bits; bits &= bits - 1) n++;
  return n;
}

// the cell of column `col` in row i, for DataTables' orthogonal data types (display, sort, filter, type)
function raw(data, col, key, i) {
  const value = data[key][i];
  if (value === null || value === undefined) return null;
  if (col.levels) return col.levels[value];
  return col.scale ? value / col.scale : value;
}

function cell(stack, col, i, type) {
  const data = stack.table.data;
  const value = raw(data, col, col.key, i);
  if (col.kind === "fail") {
    if (type === "sort" || type === "type") return popcount(value) * 65536 + value;
    return failedNames(value, stack.table.criteria).join(", ");
  }
  if (col.kind === "text") {
    if (type !== "display") return value;
    const extra = col.key === "candidate" && data.hypothetical && data.hypothetical[i] ? " <i>(hypothetical)</i>" : "";
    return escapeHtml(value) + extra;
  }
  if (type === "sort" || type === "type") {
    if (value === null) return col.key === "oxidation_potential" ? Infinity : null;
    return value;
  }
  if (value === null) return col.key === "oxidation_potential" ? "none (no Li)" : "";
  if (col.kind === "int") return String(value);
  let text = value.toFixed(col.decimals);
  const sd = col.std ? raw(data, col, col.std, i) : null;
  if (sd !== null) text += " \u00b1 " + sd.toFixed(col.decimals);
  if (col.kind === "prob" && col.key === "p_pass_all" && value < 0.5 && data.rank && data.rank[i] <= stack.table.top) {
    text += type === "display" ? ' <span class="badge badge-warn" title="passes every criterion in fewer than half of the Monte Carlo draws">uncertain</span>' : " uncertain";
  }
  return text;
}

function showDetails(index, i) {
  const stack = report.stacks[index];
  const rows = stack.table.columns.map(col => {
    const text = cell(stack, col, i, "filter");
    return `<dt>${escapeHtml(col.title)}</dt><dd>${escapeHtml(text === null ? "" : text)}</dd>`;
  });
  const box = document.getElementById(`details-${index}`);
  box.innerHTML = `<b>${escapeHtml(stack.table.data.candidate[i])}</b> (${escapeHtml(stack.table.data.formula[i])})<dl>${rows.join("")}</dl>`;
  box.dataset.row = String(i);
}

// criteria toggles: a row is shown when it fails none of the ticked criteria
const masks = new Map();
DataTable.ext.search.push((settings, searchData, dataIndex, rowData) => {
  const state = masks.get(settings.sTableId);
  return !state || !state.mask || (state.bits[rowData[0]] & state.mask) === 0;
});

function buildTable(index) {
  const stack = report.stacks[index];
  const n = stack.table.n_rows;
  const rows = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = [i];
  const tableId = `table-${index}`;
  masks.set(tableId, {mask: 0, bits: stack.table.data.failed});
  const columns = stack.table.columns.map(col => ({
    title: col.title, data: 0, type: col.kind === "text" ? "string" : "num",
    searchable: ["candidate", "formula", "elements", "anion_class"].includes(col.key),
    className: col.kind === "text" || col.kind === "fail" ? "dt-left" : "dt-right",
    render: (d, type) => cell(stack, col, d, type),
  }));
  const table = new DataTable(`#${tableId}`, {
    data: rows, columns, deferRender: true, pageLength: 25, lengthMenu: [10, 25, 100, 500],
    order: [[0, "asc"]], autoWidth: false,
  });
  table.on("click", "tbody tr", function () {
    const row = table.row(this).data();
    if (row) showDetails(index, row[0]);
  });
  const boxes = document.querySelectorAll(`#criteria-${index} input[type=checkbox]`);
  const update = () => {
    let mask = 0;
    boxes.forEach(box => { if (box.checked) mask |= 1 << Number(box.dataset.bit); });
    masks.get(tableId).mask = mask;
    table.draw();
  };
  boxes.forEach(box => box.addEventListener("change", update));
  document.querySelectorAll(`#criteria-${index} button`).forEach(button => button.addEventListener("click", () => {
    boxes.forEach(box => { box.checked = button.dataset.all === "1"; });
    update();
  }));
  report.tables[index] = table;
}

function renderPlot(div) {
  if (report.rendered.has(div.id)) return Promise.resolve();
  report.rendered.add(div.id);
  const index = Number(div.closest(".stack-ui").dataset.stack);
  const stack = report.stacks[index];
  const figure = stack.figures[div.dataset.figure];
  if (div.dataset.figure === "scatter") {  // hover names from the table's column (not shipped twice)
    figure.data.forEach(trace => { trace.text = trace.customdata.map(i => stack.table.data.candidate[i]); });
  }
  const done = Plotly.newPlot(div, figure.data, figure.layout, {responsive: true, displaylogo: false});
  return done.then(() => {
    if (div.dataset.figure === "scatter") {
      div.on("plotly_click", event => showDetails(index, event.points[0].customdata));
    }
    div.dataset.rendered = "1";
  });
}

document.querySelectorAll(".stack-ui").forEach(ui => {
  const index = Number(ui.dataset.stack);
  report.stacks[index] = JSON.parse(document.getElementById(`stack-data-${index}`).textContent);
  buildTable(index);
});

const observer = new IntersectionObserver(entries => entries.forEach(entry => {
  if (entry.isIntersecting) renderPlot(entry.target);
}), {rootMargin: "200px"});
document.querySelectorAll(".plot").forEach(div => observer.observe(div));

report.renderAll = () => Promise.all(Array.from(document.querySelectorAll(".plot"), renderPlot));
report.showDetails = showDetails;
report.readyAt = performance.now();  // ms since the navigation started
report.ready = true;
document.body.dataset.ready = "1";
