// The emofusion page: pick or record audio, type the transcript, POST both to /v1/predict.
//
// Recording goes through the Web Audio API to raw PCM and is encoded here as a 16-bit WAV,
// because the server decodes with libsndfile, which reads WAV/FLAC/OGG but not the WebM that
// MediaRecorder produces in most browsers.
"use strict";

const CLASS_NAMES = {
  ang: "anger", exc: "excitement", hap: "happiness", neu: "neutral", sad: "sadness",
  fru: "frustration", sur: "surprise", fea: "fear", dis: "disgust",
};

const $ = (id) => document.getElementById(id);
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
    $("audio-section").hidden = !info.modalities.includes("speech");
    $("text-section").hidden = !info.modalities.includes("text");
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
  if (!$("text-section").hidden) form.append("text", $("text").value);

  const button = $("predict");
  button.disabled = true;
  button.textContent = "Predicting…";
  const started = performance.now();
  try {
    const response = await fetch("/v1/predict", { method: "POST", body: form });
    const roundTrip = performance.now() - started;
    let body;
    try {
      body = await response.json();
    } catch {
      throw new Error(`the server answered ${response.status} ${response.statusText}`);
    }
    if (!response.ok) throw new Error(body.detail || `the server answered ${response.status}`);
    showResult(body, roundTrip);
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
    button.textContent = "Predict emotion";
  }
}

function showResult(body, roundTrip) {
  $("label").textContent = describeClass(body.label);
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
  const windows = body.windows > 1 ? ` · ${body.windows} windows` : "";
  $("latency").textContent =
    `Latency: ${body.latency_ms.toFixed(1)} ms on the server, ${roundTrip.toFixed(0)} ms round trip · model ${body.model}${windows}`;
  $("result").hidden = false;
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
