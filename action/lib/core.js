'use strict';
// The few pieces of @actions/core this action needs, so that it runs on a
// bare Node with no npm install: inputs, outputs, state and annotations,
// written the way the runner reads them.

const crypto = require('crypto');
const fs = require('fs');

// The runner passes input `cache-from` as INPUT_CACHE-FROM: upper-cased,
// spaces made underscores, dashes kept.
function input(name) {
  const key = `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
  return (process.env[key] || '').trim();
}

// One value per non-empty line, as actions/cache reads `path`.
function lines(name) {
  return input(name)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

// YAML 1.2 core booleans, as @actions/core accepts them; anything else is
// a mistake worth stopping for rather than guessing.
function bool(name) {
  const value = input(name);
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE', ''].includes(value)) return false;
  throw new Error(`input ${name}: "${value}" is neither true nor false`);
}

// GITHUB_OUTPUT and GITHUB_STATE take `name<<DELIM` heredocs; a random
// delimiter keeps a value that contains newlines from ending one early.
function appendTo(fileVar, name, value) {
  const file = process.env[fileVar];
  if (!file) throw new Error(`${fileVar} is not set: not running as a GitHub Actions step?`);
  const text = String(value);
  const delimiter = `ghadelimiter_${crypto.randomUUID()}`;
  if (name.includes(delimiter) || text.includes(delimiter)) {
    throw new Error(`${name}: value contains the delimiter`);
  }
  fs.appendFileSync(file, `${name}<<${delimiter}\n${text}\n${delimiter}\n`);
}

function setOutput(name, value) {
  appendTo('GITHUB_OUTPUT', name, value);
}

function saveState(name, value) {
  appendTo('GITHUB_STATE', name, value);
}

// The post step receives what the main step saved as STATE_<name>.
function getState(name) {
  return process.env[`STATE_${name}`] || '';
}

// Workflow commands: `%`, CR and LF must be escaped or the message is cut.
function escape(message) {
  return String(message).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function error(message) {
  process.stdout.write(`::error::${escape(message)}\n`);
}

function warning(message) {
  process.stdout.write(`::warning::${escape(message)}\n`);
}

function info(message) {
  process.stdout.write(`${message}\n`);
}

// Runs an async step body; any error fails the step with one annotation.
function runStep(body) {
  body().catch((err) => {
    error(err && err.message ? err.message : String(err));
    process.exitCode = 1;
  });
}

module.exports = { input, lines, bool, setOutput, saveState, getState, error, warning, info, runStep };
