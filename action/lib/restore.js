'use strict';
// The restore step: `regcache restore` with a metadata file, whose per-path
// results become the outputs `cache-hit` and `matched`.

const fs = require('fs');
const os = require('os');
const path = require('path');

const core = require('./core');
const regcache = require('./regcache');

function metadataFile() {
  const dir = process.env.RUNNER_TEMP || os.tmpdir();
  return path.join(dir, `regcache-restore-${process.pid}-${Date.now()}.json`);
}

// Where each path came from, as regcache's summary names it: the registry
// ref that was read (for a tag pattern, the tag it matched), or a local
// dir with the tag read in it.
function sourceOf(meta, pathObj) {
  const from = meta.cache_from[pathObj.from_index] || {};
  const matched = typeof from.matched === 'string' && from.matched !== '' ? from.matched : null;
  if (from.type === 'local') return matched ? `${from.src}:${matched}` : pathObj.from;
  return matched || pathObj.from;
}

// Restores `path` from `cache-from`, sets the outputs, and returns the
// cache-from lines that served at least one path (the next save's base).
function restore(bin) {
  const paths = regcache.paths();
  const from = core.lines('cache-from');
  const failOnMiss = core.bool('fail-on-miss');
  if (from.length === 0) {
    core.info('no cache-from: nothing to restore');
    core.setOutput('cache-hit', 'false');
    core.setOutput('matched', '{}');
    return [];
  }
  const meta = metadataFile();
  const args = [
    ...regcache.globalArgs(),
    '--metadata-file',
    meta,
    'restore',
    ...regcache.flagEach('--cache-from', from),
    ...(failOnMiss ? ['--fail-on-miss'] : []),
    '--',
    ...paths,
  ];
  const status = regcache.run(bin, args);
  let result = null;
  try {
    result = JSON.parse(fs.readFileSync(meta, 'utf8'));
    fs.rmSync(meta, { force: true });
  } catch (err) {
    if (status === 0) throw new Error(`reading regcache's metadata file ${meta}: ${err.message}`);
  }
  const hits = result ? result.paths.filter((p) => p.hit === true) : [];
  const matched = {};
  for (const p of hits) matched[p.path] = sourceOf(result, p);
  const everyPath = result !== null && result.paths.length > 0 && hits.length === result.paths.length;
  core.setOutput('cache-hit', everyPath ? 'true' : 'false');
  core.setOutput('matched', JSON.stringify(matched));
  if (status !== 0) {
    const why = result && result.error ? `: ${result.error}` : '';
    throw new Error(`regcache restore exited ${status}${why}`);
  }
  // A line per --cache-from, in order, is what the metadata file lists.
  if (!result || result.cache_from.length !== from.length) return [];
  const used = new Set(hits.map((p) => p.from_index));
  return from.filter((_, i) => used.has(i));
}

module.exports = { restore };
