'use strict';
// Running regcache: its argument lists, built from the action's inputs,
// and the child process itself, with its output going to the job log.

const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');

const core = require('./core');

// No shell runs between the workflow and regcache, so `~` is expanded
// here, as actions/cache does for `path`.
function expandHome(p) {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

function paths() {
  const list = core.lines('path').map(expandHome);
  if (list.length === 0) throw new Error('input path: at least one path is required');
  return list;
}

// Global options (`--insecure-registry HOST`, `-v`, `--jobs 2`), split on
// whitespace: none of them takes a value with a space in it.
function globalArgs() {
  return core.input('extra-args').split(/\s+/).filter((a) => a !== '');
}

function flagEach(flag, values) {
  return values.flatMap((value) => [flag, value]);
}

// Runs regcache, its stdout and stderr going to the step's log; returns
// its exit status (a signal counts as a failure).
function run(bin, args) {
  core.info(`regcache ${args.join(' ')}`);
  const result = spawnSync(bin, args, { stdio: 'inherit' });
  if (result.error) throw new Error(`running ${bin}: ${result.error.message}`);
  return result.status === null ? 1 : result.status;
}

module.exports = { paths, globalArgs, flagEach, run };
