// The emofusion page: pick or record audio, type the transcript, POST both to /v1/predict, or
// POST the recording to /v1/timeline and draw one coloured band per utterance along its time axis.
//
// Recording goes through the Web Audio API to raw PCM and is encoded here as a 16-bit WAV,
// because the server decodes with libsndfile, which reads WAV/FLAC/OGG but not the WebM that
// MediaRecorder produces in most browsers.
"use strict";

const CLASS_NAMES = {
  ang: "anger", exc: "excitement", hap: "happiness", neu: "neutral", sad: "sadness",
  fru: "frustration", sur: "surprise", fea: "fear", dis: "disgust",
};

// One colour per class, the same in the bands, the legend and the detail box.
const CLASS_COLOURS = {
  ang: "#d64541", exc: "#f2a600", hap: "#f2a600", neu: "#8a94a6", sad: "#3b6fd6",
  fru: "#a04ad6", sur: "#26a69a", fea: "#6d4c41", dis: "#5b8c3a",
};
const FALLBACK_COLOURS = ["#26a69a", "#a04ad6", "#6d4c41", "#5b8c3a", "#e67e22"];

const $ = (id) => document.getElementById(id);
let canTranscribe = false;

function colourOf(label, labels) {
  if (CLASS_COLOURS[label]) return CLASS_COLOURS[label];
  return FALLBACK_COLOURS[Math.max(0, labels.indexOf(label)) % FALLBACK_COLOURS.length];
}

function clock(seconds) {
  const m = Math.floor(seconds / 60);
  return `${m}:${(seconds - 60 * m).toFixed(1).padStart(4, "0")}`;
}
let recorded = null;   // {blob, name} from the microphone, or null
let recorder = null;   // active recording: {context, stream, node, chunks}

function describeClass(label) {
  return CLASS_NAMES[label] ? `${label} (${CLASS_NAMES[label]})` : label;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

async function loadModelInfo() {
  try {
    const response = await fetch("/health");
    const info = await response.json();
    if (!response.ok) throw new Error(info.detail || response.statusText);
    const uses = info.modalities.join(" + ");
    $("model-info").textContent = `Model ${info.model} (${uses}); classes: ${info.labels.map(describeClass).join(", ")}.`;
    canTranscribe = Boolean(info.transcription);
    $("audio-section").hidden = !info.modalities.includes("speech") && !canTranscribe;
    $("text-section").hidden = !info.modalities.includes("text");
    $("transcribe-hint").hidden = !canTranscribe;
    $("timeline-option").hidden = !canTranscribe;
  } catch (err) {
    $("model-info").textContent = "";
    showError(`The service is not available: ${err.message}`);
  }
}

// ---- recording -------------------------------------------------------------------------

async function startRecording() {
  clearError();
  if (!navigator.mediaDevices || !window.AudioWorkletNode) {
    showError("This browser cannot record audio here (a microphone needs https or localhost); upload a file instead.");
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    const context = new AudioContext();
    await context.audioWorklet.addModule("/static/recorder-worklet.js");
    const node = new AudioWorkletNode(context, "pcm-capture");
    const chunks = [];
    node.port.onmessage = (event) => chunks.push(event.data);
    context.createMediaStreamSource(stream).connect(node);
    recorder = { context, stream, node, chunks };
    $("record").disabled = true;
    $("stop").disabled = false;
    $("record-status").textContent = "Recording…";
  } catch (err) {
    showError(`Cannot record from the microphone: ${err.message}`);
  }
}

async function stopRecording() {
  if (!recorder) return;
  const { context, stream, node, chunks } = recorder;
  recorder = null;
  node.port.onmessage = null;
  stream.getTracks().forEach((track) => track.stop());
  await context.close();
  const blob = encodeWav(chunks, context.sampleRate);
  recorded = { blob, name: "recording.wav" };
  $("audio-file").value = "";   // the newest choice wins: a recording replaces a picked file
  $("playback").src = URL.createObjectURL(blob);
  $("playback").hidden = false;
  const seconds = chunks.reduce((n, c) => n + c.length, 0) / context.sampleRate;
  $("record-status").textContent = `Recorded ${seconds.toFixed(1)} s.`;
  $("record").disabled = false;
  $("stop").disabled = true;
}

// Mono 16-bit PCM WAV: a 44-byte RIFF header followed by the clipped, scaled samples.
function encodeWav(chunks, sampleRate) {
  const length = chunks.reduce((n, c) => n + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + 2 * length));
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * length, true); text(8, "WAVE");
  text(12, "fmt "); view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, sampleRate, true); view.setUint32(28, 2 * sampleRate, true);
  view.setUint16(32, 2, true); view.setUint16(34, 16, true);
  text(36, "data"); view.setUint32(40, 2 * length, true);
  let offset = 44;
  for (const chunk of chunks) {
    for (let i = 0; i < chunk.length; i++, offset += 2) {
      const s = Math.max(-1, Math.min(1, chunk[i]));
      view.setInt16(offset, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return new Blob([view], { type: "audio/wav" });
}

// ---- prediction ------------------------------------------------------------------------

async function predict(event) {
  event.preventDefault();
  clearError();
  $("result").hidden = true;
  const form = new FormData();
  const file = $("audio-file").files[0];
  if (!$("audio-section").hidden) {
    if (file) form.append("audio", file, file.name);
    else if (recorded) form.append("audio", recorded.blob, recorded.name);
  }
  // An empty transcript is left out: the server then transcribes the recording (when it can).
  if (!$("text-section").hidden && ($("text").value.trim() || !canTranscribe)) form.append("text", $("text").value);
  const timeline = canTranscribe && $("timeline-mode").checked;

  const button = $("predict");
  button.disabled = true;
  button.textContent = "Predicting…";
  const started = performance.now();
  try {
    const response = await fetch(timeline ? "/v1/timeline" : "/v1/predict", { method: "POST", body: form });
    const roundTrip = performance.now() - started;
    let body;
    try {
      body = await response.json();
    } catch {
      throw new Error(`the server answered ${response.status} ${response.statusText}`);
    }
    if (!response.ok) throw new Error(body.detail || `the server answered ${response.status}`);
    if (timeline) showTimeline(body, roundTrip);
    else showResult(body, roundTrip);
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
    button.textContent = "Predict emotion";
  }
}

function showResult(body, roundTrip) {
  $("timeline").hidden = true;
  showTranscript(body.transcribed ? `Transcript (Whisper): “${body.transcript}”` : "");
  showOverall(body);
  const windows = body.windows > 1 ? ` · ${body.windows} windows` : "";
  $("latency").textContent =
    `Latency: ${body.latency_ms.toFixed(1)} ms on the server, ${roundTrip.toFixed(0)} ms round trip · model ${body.model}${windows}`;
  $("result").hidden = false;
}

function showTranscript(text) {
  $("transcript").textContent = text;
  $("transcript").hidden = !text;
}

// The label and one bar per class (a prediction, or a timeline's duration-weighted overall).
function showOverall(body) {
  $("label").textContent = body.label ? describeClass(body.label) : "none";
  // confident is false below the model's validated threshold (null: the model has no calibration).
  if (body.confident === false) {
    const tag = document.createElement("span");
    tag.className = "uncertain-tag";
    tag.textContent = "uncertain";
    tag.title = "The top probability is below the level at which this model was right 4 times in 5 on held-out speakers";
    $("label").append(" ", tag);
  }
  const bars = $("bars");
  bars.replaceChildren();
  for (const [label, p] of Object.entries(body.probabilities)) {
    const percent = (100 * p).toFixed(1);
    const row = document.createElement("div");
    row.className = "bar-row" + (label === body.label ? " top" : "");
    row.dataset.label = label;
    const name = document.createElement("span");
    name.className = "bar-name";
    name.textContent = describeClass(label);
    const track = document.createElement("div");
    track.className = "bar-track";
    track.setAttribute("role", "progressbar");
    track.setAttribute("aria-label", `probability of ${describeClass(label)}`);
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", percent);
    const fill = document.createElement("div");
    fill.className = "bar-fill";
    fill.style.width = `${percent}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "bar-value";
    value.textContent = `${percent}%`;
    row.append(name, track, value);
    bars.append(row);
  }
}

// One band per utterance, placed and sized by its start and end along the recording.
function showTimeline(body, roundTrip) {
  const labels = body.probabilities ? Object.keys(body.probabilities)
    : [...new Set(body.segments.flatMap((s) => Object.keys(s.probabilities || {})))];
  const track = $("timeline-track");
  track.replaceChildren();
  $("segment-detail").hidden = true;
  const duration = Math.max(body.duration, 1e-6);
  // One lane per speaker (in order of first appearance), or one "speech" lane when speakers were not told apart.
  const lanes = (body.speakers || []).map((p) => p.speaker);
  if (!lanes.length || body.segments.some((s) => !s.speaker)) lanes.push("speech");
  const laneOf = {};
  $("timeline-lanes").replaceChildren();
  lanes.forEach((name, i) => {
    const lane = document.createElement("div");
    lane.className = "lane";
    lane.dataset.speaker = name;
    lane.style.top = `${2.2 * i}rem`;
    track.append(lane);
    laneOf[name] = lane;
    const label = document.createElement("div");
    label.className = "lane-name";
    label.textContent = name;
    $("timeline-lanes").append(label);
  });
  track.style.height = `${2.2 * lanes.length}rem`;
  const cursor = document.createElement("div");
  cursor.id = "timeline-cursor";
  cursor.style.left = "0%";
  track.append(cursor);
  setUpPlayer(duration);
  body.segments.forEach((segment, index) => {
    const band = document.createElement("div");
    band.className = "segment" + (segment.error ? " failed" : "") + (segment.confident === false ? " uncertain" : "");
    band.setAttribute("role", "listitem");
    band.tabIndex = 0;
    band.dataset.index = String(index);
    band.dataset.label = segment.label || "";
    band.style.left = `${(100 * segment.start) / duration}%`;
    band.style.width = `${(100 * (segment.end - segment.start)) / duration}%`;
    // The emotion's colour, its confidence (top probability) as the colour's opacity.
    const confidence = segment.probabilities ? Math.max(...Object.values(segment.probabilities)) : 1;
    band.dataset.confidence = confidence.toFixed(3);
    band.dataset.speaker = segment.speaker || "";
    band.style.background = segment.label ? withAlpha(colourOf(segment.label, labels), Math.max(0.2, confidence)) : "#e7eaef";
    band.title = `${clock(segment.start)}–${clock(segment.end)}` + (segment.speaker ? ` · ${segment.speaker}` : "") +
      ` · ${segment.label ? `${describeClass(segment.label)} ${(100 * confidence).toFixed(0)}%` : "no label"}` +
      (segment.confident === false ? " · uncertain" : "") + (segment.text ? ` · “${segment.text}”` : "");
    band.setAttribute("aria-label", `${clock(segment.start)} to ${clock(segment.end)}: ${segment.label ? describeClass(segment.label) : "no label"}` +
      (segment.confident === false ? " (uncertain)" : ""));
    const show = () => showSegment(segment, band);
    band.addEventListener("mouseenter", show);
    band.addEventListener("focus", show);
    band.addEventListener("click", () => { show(); playSegment(segment); });
    laneOf[segment.speaker || "speech"].append(band);
  });
  $("axis-end").textContent = clock(body.duration);
  const legend = $("timeline-legend");
  legend.replaceChildren();
  for (const label of labels) {
    const item = document.createElement("span");
    item.className = "legend-item";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colourOf(label, labels);
    item.append(swatch, describeClass(label));
    legend.append(item);
  }
  showSpeakers(body.speakers || [], labels);
  showTranscript([body.note, body.speaker_note].filter(Boolean).join(" · "));
  showOverall(body);
  $("timeline").hidden = false;
  $("latency").textContent =
    `${body.segments.length} utterances in ${body.duration.toFixed(1)} s · ${(body.latency_ms / 1000).toFixed(1)} s on the server, ` +
    `${(roundTrip / 1000).toFixed(1)} s round trip · model ${body.model}` + (body.transcriber ? ` · words by ${body.transcriber}` : "");
  $("result").hidden = false;
}

function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha.toFixed(3)})`;
}

// The recording the timeline was made from, in a player whose position moves the cursor.
let segmentEnd = null;   // while a clicked segment plays: where to stop
function setUpPlayer(duration) {
  const audio = $("timeline-audio");
  const file = $("audio-file").files[0];
  const blob = file || (recorded && recorded.blob);
  if (audio.dataset.url) URL.revokeObjectURL(audio.dataset.url);
  audio.hidden = !blob;
  if (!blob) return;
  audio.dataset.url = URL.createObjectURL(blob);
  audio.src = audio.dataset.url;
  const move = () => {
    $("timeline-cursor").style.left = `${Math.min(100, (100 * audio.currentTime) / duration)}%`;
    if (segmentEnd !== null && audio.currentTime >= segmentEnd) {
      audio.pause();
      segmentEnd = null;
    }
  };
  audio.ontimeupdate = move;
  audio.onseeked = move;
  audio.onplay = () => {
    const tick = () => { move(); if (!audio.paused) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  };
}

function playSegment(segment) {
  const audio = $("timeline-audio");
  if (audio.hidden) return;
  audio.currentTime = segment.start;
  segmentEnd = segment.end;
  audio.play().catch(() => {});   // a browser that refuses to play still shows where the segment is
}

// Who felt what: per speaker, speaking time, seconds per emotion and the overall emotion.
function showSpeakers(speakers, labels) {
  const table = $("speaker-summary");
  table.hidden = !speakers.length;
  const head = $("speaker-summary-head");
  head.replaceChildren();
  for (const name of ["speaker", "speaking", ...labels, "overall"]) {
    const th = document.createElement("th");
    th.textContent = name;
    head.append(th);
  }
  const rows = table.querySelector("tbody");
  rows.replaceChildren();
  for (const p of speakers) {
    const row = document.createElement("tr");
    row.dataset.speaker = p.speaker;
    const cells = [p.speaker, `${p.speaking_s.toFixed(1)} s`, ...labels.map((c) => `${(p.emotion_s[c] || 0).toFixed(1)} s`),
      p.label ? describeClass(p.label) : "–"];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      row.append(td);
    }
    rows.append(row);
  }
}

// What one band holds: its time, its words and every class probability.
function showSegment(segment, band) {
  document.querySelectorAll("#timeline-track .segment.active").forEach((b) => b.classList.remove("active"));
  band.classList.add("active");
  const detail = $("segment-detail");
  detail.replaceChildren();
  const head = document.createElement("div");
  head.className = "detail-head";
  head.textContent = `${clock(segment.start)}–${clock(segment.end)}` + (segment.speaker ? ` · ${segment.speaker}` : "") + ` · ${segment.label ? describeClass(segment.label) : "no label"}` +
    (segment.confident === false ? " · uncertain" : "") + (segment.model ? ` · ${segment.model}` : "");
  const words = document.createElement("div");
  words.className = "detail-text";
  words.textContent = segment.text ? `“${segment.text}”` : (segment.text === null ? "" : "(no words heard)");
  detail.append(head, words);
  if (segment.error) {
    const error = document.createElement("div");
    error.className = "detail-error";
    error.textContent = segment.error;
    detail.append(error);
  }
  for (const [label, p] of Object.entries(segment.probabilities || {})) {
    const row = document.createElement("div");
    row.className = "detail-prob";
    row.dataset.label = label;
    row.textContent = `${describeClass(label)}: ${(100 * p).toFixed(1)}%`;
    detail.append(row);
  }
  detail.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  $("predict-form").addEventListener("submit", predict);
  $("record").addEventListener("click", startRecording);
  $("stop").addEventListener("click", stopRecording);
  $("audio-file").addEventListener("change", () => {
    if ($("audio-file").files.length) recorded = null;   // a picked file replaces a recording
    $("playback").hidden = true;
    $("record-status").textContent = "";
  });
  loadModelInfo();
});
