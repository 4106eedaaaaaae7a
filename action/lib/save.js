'use strict';
// The save step: `regcache save` of `path` to every `cache-to`, comparing
// with `bases` (the caches the restore used) so unchanged parts are reused
// and, within one registry, mounted instead of sent again.

const core = require('./core');
const regcache = require('./regcache');

function save(bin, bases) {
  const to = core.lines('cache-to');
  if (to.length === 0) {
    core.info('no cache-to: nothing to save');
    return;
  }
  const args = [
    ...regcache.globalArgs(),
    'save',
    ...regcache.flagEach('--cache-to', to),
    ...regcache.flagEach('--cache-from', bases),
    '--',
    ...regcache.paths(),
  ];
  const status = regcache.run(bin, args);
  if (status !== 0) throw new Error(`regcache save exited ${status}`);
}

module.exports = { save };
