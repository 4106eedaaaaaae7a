'use strict';
// The action's post step (`post-if: success()`): save what the job built.

const core = require('./lib/core');
const { save } = require('./lib/save');

core.runStep(async () => {
  const bin = core.getState('regcache');
  if (!bin) throw new Error('the main step left no regcache path: did it run?');
  const bases = JSON.parse(core.getState('bases') || '[]');
  save(bin, bases);
});
